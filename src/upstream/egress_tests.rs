//! The egress address policy, without sockets.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn policy(allow: &[&str], public: bool, own: &[&str]) -> EgressPolicy {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let own: Vec<SocketAddr> = own.iter().map(|s| sa(s)).collect();
    EgressPolicy::new(&allow, public, &own).unwrap()
}

fn class_of(err: Result<(), EgressError>) -> &'static str {
    match err {
        Err(EgressError::Refused { class, .. }) => class,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn ipv4_ranges_are_classified() {
    let special = [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.255", "shared (CGNAT)"),
        ("169.254.1.1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this-network"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.0.8", "IETF protocol"),
    ];
    for (a, want) in special {
        assert_eq!(classify(ip(a)), Class::Special(want), "{a}");
    }
    for a in ["8.8.8.8", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "1.1.1.1", "11.0.0.1"] {
        assert_eq!(classify(ip(a)), Class::Public, "{a}");
    }
}

#[test]
fn ipv6_ranges_are_classified_and_embedded_ipv4_is_judged_as_ipv4() {
    let special = [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "IETF protocol"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b:1::1", "NAT64 local-use"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::", "link-local"),
        ("100::1", "discard"),
        ("4000::1", "reserved"),
    ];
    for (a, want) in special {
        assert_eq!(classify(ip(a)), Class::Special(want), "{a}");
    }
    for a in ["2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
        assert_eq!(classify(ip(a)), Class::Public, "{a}");
    }
}

#[test]
fn metadata_addresses_are_their_own_class() {
    for a in ["169.254.169.254", "::ffff:169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"] {
        assert_eq!(classify(ip(a)), Class::Metadata, "{a}");
    }
    // Azure's WireServer sits in a public range and is still refused by default.
    let p = policy(&[], true, &[]);
    assert_eq!(class_of(p.check_addr("168.63.129.16", sa("168.63.129.16:80"))), "cloud metadata");
}

#[test]
fn numeric_ipv4_forms_are_recognised() {
    let loopback = Ipv4Addr::new(127, 0, 0, 1);
    for form in ["2130706433", "0x7f.1", "0x7F000001", "017700000001", "127.1", "127.0.1", "0177.0.0.1", "127.0.0.01"] {
        assert_eq!(numeric_ipv4(form), Some(loopback), "{form}");
    }
    assert_eq!(numeric_ipv4("0"), Some(Ipv4Addr::UNSPECIFIED));
    assert_eq!(numeric_ipv4("0xa9fea9fe"), Some(Ipv4Addr::new(169, 254, 169, 254)));
    for not in [
        "127.0.0.1",
        "localhost",
        "example.com",
        "1.2.3.4.5",
        "256.1.1.1",
        "08",
        "4294967296",
        "0x100000000",
        "1..2",
        "",
    ] {
        assert_eq!(numeric_ipv4(not), None, "{not}");
    }
}

#[test]
fn by_default_nothing_private_and_public_is_allowed() {
    let p = policy(&[], true, &[]);
    for (host, addr, class) in [
        ("127.0.0.1", "127.0.0.1:80", "loopback"),
        ("::1", "[::1]:80", "loopback"),
        ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:80", "loopback"),
        ("0.0.0.0", "0.0.0.0:80", "unspecified"),
        ("169.254.169.254", "169.254.169.254:80", "cloud metadata"),
        ("10.0.0.1", "10.0.0.1:80", "private"),
        ("100.64.0.1", "100.64.0.1:80", "shared (CGNAT)"),
        ("fe80::1", "[fe80::1]:80", "link-local"),
        ("fd00::1", "[fd00::1]:80", "unique-local"),
        ("255.255.255.255", "255.255.255.255:80", "broadcast"),
    ] {
        assert_eq!(class_of(p.check_addr(host, sa(addr))), class, "{addr}");
        let port = sa(addr).port();
        assert_eq!(class_of(p.check_host(host, port)), class, "{host} as a literal");
    }
    assert_eq!(p.check_addr("example.com", sa("93.184.216.34:443")), Ok(()));
    assert_eq!(class_of(p.check_host("[::1]", 80)), "loopback");
    // Names pass the static check; their addresses are judged when resolved.
    assert_eq!(p.check_host("localhost", 80), Ok(()));
    assert!(matches!(p.check_resolved("localhost", &[sa("127.0.0.1:80")]), Err(EgressError::Refused { .. })));
}

#[test]
fn non_canonical_numeric_hosts_are_refused_outright() {
    let p = policy(&["127.0.0.1"], true, &[]);
    for host in ["2130706433", "0x7f.1", "017700000001", "127.1"] {
        assert_eq!(p.check_host(host, 80), Err(EgressError::NonCanonical { host: host.into() }), "{host}");
        assert!(matches!(p.check_resolved(host, &[sa("127.0.0.1:80")]), Err(EgressError::NonCanonical { .. })));
    }
    // The canonical form of the same address is an ordinary (here: allowed) literal.
    assert_eq!(p.check_host("127.0.0.1", 80), Ok(()));
}

#[test]
fn allow_entries_open_what_they_name() {
    let p = policy(&["10.0.0.0/8", "127.0.0.1:8080", "[::1]:8443", "internal.corp", "api.partner.com:443"], true, &[]);
    assert_eq!(p.check_addr("10.1.2.3", sa("10.1.2.3:80")), Ok(()));
    assert_eq!(class_of(p.check_addr("172.16.0.1", sa("172.16.0.1:80"))), "private");
    assert_eq!(p.check_addr("127.0.0.1", sa("127.0.0.1:8080")), Ok(()));
    assert_eq!(class_of(p.check_addr("127.0.0.1", sa("127.0.0.1:8081"))), "loopback");
    assert_eq!(p.check_addr("::1", sa("[::1]:8443")), Ok(()));
    assert_eq!(class_of(p.check_addr("::1", sa("[::1]:8080"))), "loopback");
    // A mapped address is the IPv4 address it carries, for allowing as for refusing.
    assert_eq!(p.check_addr("::ffff:127.0.0.1", sa("[::ffff:127.0.0.1]:8080")), Ok(()));
    // A name entry covers what that name resolves to, and nothing reached by another name.
    assert_eq!(p.check_addr("internal.corp", sa("192.168.5.5:443")), Ok(()));
    assert_eq!(p.check_addr("INTERNAL.corp.", sa("192.168.5.5:443")), Ok(()));
    assert_eq!(class_of(p.check_addr("other.corp", sa("192.168.5.5:443"))), "private");
    assert_eq!(p.check_addr("api.partner.com", sa("10.9.9.9:443")), Ok(()));
    assert_eq!(class_of(p.check_addr("api.partner.com", sa("192.168.9.9:80"))), "private");
}

#[test]
fn without_allow_public_only_listed_destinations_are_reached() {
    let p = policy(&["api.partner.com", "203.0.113.0/24", "8.8.4.4"], false, &[]);
    assert_eq!(class_of(p.check_addr("example.com", sa("93.184.216.34:443"))), "public");
    assert_eq!(p.check_addr("api.partner.com", sa("93.184.216.34:443")), Ok(()));
    assert_eq!(p.check_addr("8.8.4.4", sa("8.8.4.4:53")), Ok(()));
    assert_eq!(class_of(p.check_addr("8.8.8.8", sa("8.8.8.8:53"))), "public");
}

#[test]
fn the_gateways_own_listeners_need_an_exact_entry() {
    let own = ["127.0.0.1:8001", "127.0.0.1:9901"];
    let broad = policy(&["127.0.0.0/8", "localhost"], true, &own);
    for addr in ["127.0.0.1:9901", "[::ffff:127.0.0.1]:9901", "127.0.0.1:8001"] {
        assert_eq!(class_of(broad.check_addr("127.0.0.1", sa(addr))), "gateway listener", "{addr}");
    }
    assert_eq!(class_of(broad.check_addr("localhost", sa("127.0.0.1:9901"))), "gateway listener");
    assert_eq!(broad.check_addr("127.0.0.1", sa("127.0.0.1:9902")), Ok(()));
    let portless = policy(&["127.0.0.1"], true, &own);
    assert_eq!(class_of(portless.check_addr("127.0.0.1", sa("127.0.0.1:9901"))), "gateway listener");
    let exact = policy(&["127.0.0.1:9901"], true, &own);
    assert_eq!(exact.check_addr("127.0.0.1", sa("127.0.0.1:9901")), Ok(()));
    // A wildcard listener is every address on its port.
    let wild = policy(&["10.0.0.0/8"], true, &["0.0.0.0:8001"]);
    assert_eq!(class_of(wild.check_addr("10.0.0.5", sa("10.0.0.5:8001"))), "gateway listener");
    assert_eq!(wild.check_addr("10.0.0.5", sa("10.0.0.5:8002")), Ok(()));
}

#[test]
fn metadata_needs_an_exact_entry() {
    let broad = policy(&["169.254.0.0/16", "fd00::/8"], true, &[]);
    assert_eq!(class_of(broad.check_addr("169.254.169.254", sa("169.254.169.254:80"))), "cloud metadata");
    assert_eq!(class_of(broad.check_addr("fd00:ec2::254", sa("[fd00:ec2::254]:80"))), "cloud metadata");
    assert_eq!(broad.check_addr("169.254.1.1", sa("169.254.1.1:80")), Ok(()));
    // A name entry does not open it either (metadata.google.internal resolves there).
    let named = policy(&["metadata.google.internal"], true, &[]);
    let refused = named.check_addr("metadata.google.internal", sa("169.254.169.254:80"));
    assert_eq!(class_of(refused), "cloud metadata");
    let exact = policy(&["169.254.169.254"], true, &[]);
    assert_eq!(exact.check_addr("169.254.169.254", sa("169.254.169.254:80")), Ok(()));
}

#[test]
fn every_resolved_address_must_pass_and_the_first_is_connected_to() {
    let p = policy(&[], true, &[]);
    let mixed = [sa("93.184.216.34:443"), sa("127.0.0.1:443")];
    assert!(matches!(p.check_resolved("rebind.example", &mixed), Err(EgressError::Refused { class: "loopback", .. })));
    let good = [sa("93.184.216.34:443"), sa("[2606:2800:220:1::1]:443")];
    assert_eq!(p.check_resolved("example.com", &good), Ok(good[0]));
    assert_eq!(p.check_resolved("empty.example", &[]), Err(EgressError::NoAddress { host: "empty.example".into() }));
}

#[test]
fn refusals_name_the_host_and_class_not_the_resolved_address() {
    let p = policy(&[], true, &[]);
    let e = p.check_resolved("intranet.example", &[sa("10.11.12.13:80")]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("intranet.example") && text.contains("private"), "{text}");
    assert!(!text.contains("10.11.12.13"), "{text}");
}

#[test]
fn cidr_blocks_match_on_bit_boundaries() {
    let c = Cidr::parse("172.16.0.0/12").unwrap();
    assert!(c.contains(ip("172.31.255.255")) && !c.contains(ip("172.32.0.0")) && !c.contains(ip("::1")));
    assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    let v6 = Cidr::parse("fd00::/8").unwrap();
    assert!(v6.contains(ip("fdff::1")) && !v6.contains(ip("fe00::1")));
    assert!(Cidr::parse("::ffff:10.0.0.0/104").is_none(), "a mapped block is written as IPv4");
    assert!(Cidr::parse("10.0.0.0/8").unwrap().contains(ip("::ffff:10.1.1.1")));
}

#[test]
fn bad_allow_entries_are_config_errors() {
    for bad in [
        "",
        " ",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/8:80",
        "0x7f.1",
        "2130706433",
        "host:0",
        "host:99999",
        "a b",
        "[::1",
        "[::1]x",
        "a:b:c",
        "*.corp",
    ] {
        let e = EgressPolicy::new(&[bad.to_string()], true, &[]).unwrap_err();
        assert_eq!(e.entry, bad);
    }
}
