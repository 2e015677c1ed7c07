//! The egress address policy: which addresses a manifest-described HTTP tool may connect to.
//! Pure (no sockets, no DNS): the sender resolves once ([`super::resolve_all`]), hands every
//! address here, and connects to the address that passed, so a second DNS answer can never
//! slip in between the check and the connect (DNS rebinding).
//!
//! Rules, per resolved address (IPv4-mapped IPv6 is judged as the IPv4 address it carries):
//!
//! 1. The gateway's own listeners (`listen`, `admin_listen`; a wildcard listener counts for
//!    every address on its port) are refused unless an allow entry names exactly that IP and
//!    port. A CIDR or a portless entry is not enough: reaching the admin listener from a tool
//!    is never an accident an operator wants.
//! 2. Cloud metadata addresses ([`METADATA`]) are refused unless an allow entry names exactly
//!    that IP (`/32`, `/128`, any port or the right one).
//! 3. Any other non-public address ([`classify`]: loopback, RFC 1918, CGNAT, link-local,
//!    unique-local, unspecified, broadcast, multicast, documentation, …) is refused unless an
//!    allow entry covers it: a CIDR or IP containing it, or a host name entry equal to the
//!    name being reached, with a matching port when the entry has one.
//! 4. A public address is allowed when `allow_public` is on, otherwise only when an entry
//!    covers it as in 3.
//!
//! Every address a name resolves to must pass: a name with one private answer is refused as a
//! whole. Host strings that the C resolver would read as a numeric IPv4 address but are not
//! the canonical dotted quad (`2130706433`, `0x7f.1`, `017700000001`, `127.1`) are refused
//! outright: parsers disagree about them, and nobody writes them by accident.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Addresses of cloud instance metadata services: AWS/GCP/Azure/OpenStack (`169.254.169.254`),
/// AWS ECS and EKS (`169.254.170.2`, `169.254.170.23`), Alibaba (`100.100.100.200`), Oracle
/// (`192.0.0.192`), Azure WireServer (`168.63.129.16`, a public-range address), AWS over IPv6
/// (`fd00:ec2::254`, `fd00:ec2::23`).
pub const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

/// What kind of address an IP is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Globally routable.
    Public,
    /// A cloud metadata service ([`METADATA`]).
    Metadata,
    /// Not globally routable; the text says which range (`loopback`, `private`, …).
    Special(&'static str),
}

/// A CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ip/prefix` or a bare IP (a single address). IPv4-mapped IPv6 blocks are kept
    /// as written; addresses are compared after [`canonical`].
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr = canonical(ip.parse::<IpAddr>().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().ok()?,
            Some(_) => return None,
        };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` (canonical) is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }

    /// Whether the block is one address equal to `ip`.
    fn is_exactly(&self, ip: IpAddr) -> bool {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        self.prefix == max && self.addr == canonical(ip)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// One entry of `providers.http.egress.allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// A host name (lowercase, no trailing dot): the name a manifest's base URL uses.
    Name { name: String, port: Option<u16> },
    /// An IP, `ip:port`, `[v6]:port` or CIDR block.
    Net { net: Cidr, port: Option<u16> },
}

impl Rule {
    fn parse(entry: &str) -> Result<Rule, String> {
        let e = entry.trim();
        if e.is_empty() {
            return Err("empty entry".into());
        }
        if let Some(net) = Cidr::parse(e) {
            return Ok(Rule::Net { net, port: None });
        }
        let (host, port) = split_port(e)?;
        if let Some(net) = Cidr::parse(host).filter(|_| !host.contains('/')) {
            return Ok(Rule::Net { net, port });
        }
        if host.contains('/') {
            return Err("a CIDR block takes no port".into());
        }
        if numeric_ipv4(host).is_some() {
            return Err("write IPv4 addresses as a dotted quad".into());
        }
        let name = normalize_name(host);
        let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name.split('.').all(label_ok) {
            return Err("not a host name, IP address or CIDR block".into());
        }
        Ok(Rule::Name { name, port })
    }

    fn port_ok(port: Option<u16>, want: u16) -> bool {
        port.is_none_or(|p| p == want)
    }

    /// Covers `addr` reached as `host` (rules 3 and 4).
    fn covers(&self, host: &str, addr: SocketAddr) -> bool {
        match self {
            Rule::Name { name, port } => *name == normalize_name(host) && Self::port_ok(*port, addr.port()),
            Rule::Net { net, port } => net.contains(addr.ip()) && Self::port_ok(*port, addr.port()),
        }
    }
}

/// `host:port` or `[v6]:port` → (host, port); no port → (entry, None).
fn split_port(e: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = || "port must be 1..=65535".to_string();
    let parse_port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad_port);
    if let Some(rest) = e.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed [")?;
        return match after {
            "" => Ok((host, None)),
            a => Ok((host, Some(parse_port(a.strip_prefix(':').ok_or("junk after ]")?)?))),
        };
    }
    match e.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h, Some(parse_port(p)?))),
        Some(_) => Err("bracket IPv6 addresses that carry a port: [::1]:8080".into()),
        None => Ok((e, None)),
    }
}

fn normalize_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A bad `providers.http.egress.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry:?}: {problem}")]
pub struct EgressConfigError {
    /// The entry as configured.
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Why a destination is refused. The text names the host the manifest gave and the kind of
/// address, never the resolved address itself (an internal DNS answer is not the caller's
/// business; the log has it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// An address `host` resolved to (or is) is not allowed.
    #[error("egress to {host} refused: it is a {class} address not on providers.http.egress.allow")]
    Refused {
        /// The host as the manifest names it.
        host: String,
        /// The refused address (for the log).
        addr: IpAddr,
        /// `loopback`, `private`, `cloud metadata`, `gateway listener`, `public`, …
        class: &'static str,
    },
    /// `host` is a numeric IPv4 form other than the dotted quad.
    #[error("egress to {host} refused: write IPv4 addresses as a dotted quad")]
    NonCanonical {
        /// The host as the manifest names it.
        host: String,
    },
    /// The resolver gave no address.
    #[error("egress to {host} refused: it resolved to no address")]
    NoAddress {
        /// The host as the manifest names it.
        host: String,
    },
}

/// The operator's egress policy for manifest-described HTTP tools. Built once from
/// `providers.http.egress` and the gateway's own listener addresses.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    rules: Vec<Rule>,
    allow_public: bool,
    own: Vec<SocketAddr>,
}

impl EgressPolicy {
    /// The policy from the allow entries, `allow_public`, and the gateway's own listeners.
    pub fn new(
        allow: &[String],
        allow_public: bool,
        own_listeners: &[SocketAddr],
    ) -> Result<EgressPolicy, EgressConfigError> {
        let rules = allow
            .iter()
            .map(|e| Rule::parse(e).map_err(|problem| EgressConfigError { entry: e.clone(), problem }))
            .collect::<Result<_, _>>()?;
        Ok(EgressPolicy { rules, allow_public, own: own_listeners.to_vec() })
    }

    /// The check that needs no DNS: an IP literal host is judged now (as at connect time), a
    /// non-canonical numeric IPv4 form is refused, a name passes (its addresses are checked
    /// when it is resolved, at connect time).
    pub fn check_host(&self, host: &str, port: u16) -> Result<(), EgressError> {
        let literal = host.trim_matches(['[', ']']);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return self.check_addr(host, SocketAddr::new(ip, port));
        }
        if numeric_ipv4(literal).is_some() {
            return Err(EgressError::NonCanonical { host: host.to_string() });
        }
        Ok(())
    }

    /// Checks every address `host` resolved to and returns the one to connect to (the first).
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<SocketAddr, EgressError> {
        if numeric_ipv4(host.trim_matches(['[', ']'])).is_some() {
            return Err(EgressError::NonCanonical { host: host.to_string() });
        }
        for a in addrs {
            self.check_addr(host, *a)?;
        }
        addrs.first().copied().ok_or_else(|| EgressError::NoAddress { host: host.to_string() })
    }

    /// Checks one address reached as `host` (rules 1–4 in the module docs).
    pub fn check_addr(&self, host: &str, addr: SocketAddr) -> Result<(), EgressError> {
        let ip = canonical(addr.ip());
        let refused = |class| Err(EgressError::Refused { host: host.to_string(), addr: ip, class });
        let exact_net = |need_port: bool| {
            self.rules.iter().any(|r| match r {
                Rule::Net { net, port } => {
                    net.is_exactly(ip)
                        && if need_port { *port == Some(addr.port()) } else { Rule::port_ok(*port, addr.port()) }
                }
                Rule::Name { .. } => false,
            })
        };
        if self.is_own_listener(ip, addr.port()) {
            return if exact_net(true) { Ok(()) } else { refused("gateway listener") };
        }
        let covered = || self.rules.iter().any(|r| r.covers(host, SocketAddr::new(ip, addr.port())));
        match classify(ip) {
            Class::Metadata if exact_net(false) => Ok(()),
            Class::Metadata => refused("cloud metadata"),
            Class::Public if self.allow_public || covered() => Ok(()),
            Class::Public => refused("public"),
            Class::Special(_) if covered() => Ok(()),
            Class::Special(class) => refused(class),
        }
    }

    fn is_own_listener(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|l| l.port() == port && (l.ip().is_unspecified() || canonical(l.ip()) == ip))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries; anything
/// else unchanged. Sockets connect such an address to the IPv4 host.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// What kind of address `ip` is (after [`canonical`]).
pub fn classify(ip: IpAddr) -> Class {
    let ip = canonical(ip);
    if METADATA.contains(&ip) {
        return Class::Metadata;
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    let special = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "this-network",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return Class::Public,
    };
    Class::Special(special)
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| classify_v4(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
    let special = match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // ::/96, IPv4-compatible (deprecated); ::ffff:0:0/96 was made IPv4 by `canonical`.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped",
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return embedded(hi, lo),
        [0x64, 0xff9b, 1, ..] => "NAT64 local-use",
        [0x2002, hi, lo, ..] => return embedded(hi, lo),
        [0x100, 0, 0, 0, ..] => "discard",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, 0..=0x1ff, ..] => "IETF protocol",
        [0x3fff, 0..=0x0fff, ..] => "documentation",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique-local",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        // Only 2000::/3 is allocated for global unicast.
        [x, ..] if x & 0xe000 != 0x2000 => "reserved",
        _ => return Class::Public,
    };
    Class::Special(special)
}

/// The IPv4 address the C resolver (`inet_aton`) reads `host` as, when `host` is numeric but
/// not the canonical dotted quad: one to four parts, each decimal, octal (leading `0`) or hex
/// (`0x`), the last filling the remaining bytes (`2130706433`, `0x7f.1`, `127.0.0.01`).
pub fn numeric_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for p in &parts {
        let lower = p.to_ascii_lowercase();
        let v = if let Some(hex) = lower.strip_prefix("0x") {
            if hex.is_empty() {
                0
            } else if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                u64::from_str_radix(hex, 16).ok()?
            } else {
                return None;
            }
        } else if lower.len() > 1 && lower.starts_with('0') {
            if !lower.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            u64::from_str_radix(&lower[1..], 8).ok()?
        } else if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
            lower.parse::<u64>().ok()?
        } else {
            return None;
        };
        values.push(v);
    }
    let (last, head) = values.split_last()?;
    if head.iter().any(|v| *v > 255) {
        return None;
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut n: u64 = 0;
    for (i, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * i as u32);
    }
    let ip = Ipv4Addr::from((n | last) as u32);
    // The canonical form is an ordinary IP literal, not a trick.
    (ip.to_string() != host).then_some(ip)
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
