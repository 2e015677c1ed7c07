//! Refusing to start on a busy port. pingora retries a `bind()` that fails with "address in
//! use" for 30 seconds and logs "serving" meanwhile, so a second gateway on the same port
//! would look healthy while the first one answers. Before pingora starts, each configured
//! address is bound once and released; a busy one is a startup error naming it (exit 2).
//! Skipped on `serve --upgrade`, where the sockets come from the running gateway.

use std::net::TcpListener;

/// Fails with a one-line message naming the first configured address that cannot be bound.
pub fn ensure_free(addrs: &[(&str, &str)]) -> Result<(), String> {
    for (key, addr) in addrs {
        // std sets SO_REUSEADDR, as pingora does: a port held only by TIME_WAIT connections
        // of a previous run counts as free, one with a listener does not.
        if let Err(e) = TcpListener::bind(addr) {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                "address already in use".to_string()
            } else {
                e.to_string()
            };
            return Err(format!("{key} {addr}: {why}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_address_is_named_and_a_free_one_passes() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_addr = busy.local_addr().unwrap().to_string();
        let free_addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert_eq!(ensure_free(&[("listen", &free_addr)]), Ok(()));
        let e = ensure_free(&[("listen", &free_addr), ("admin_listen", &busy_addr)]).unwrap_err();
        assert_eq!(e, format!("admin_listen {busy_addr}: address already in use"));
    }
}
