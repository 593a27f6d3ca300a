//! What several operations share: a plain confirmation, and who the caller is as far as the
//! network tells.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use poem::Request;
use poem_openapi::Object;

use crate::domain::ClientInfo;

/// A plain confirmation.
#[derive(Debug, Clone, Object)]
pub struct Message {
    pub message: String,
}

/// Longest user agent kept; the rest is noise or an attack on storage.
const MAX_USER_AGENT_CHARS: usize = 512;

/// What the network tells about the caller. The client IP is the socket peer, unless the peer
/// is a trusted proxy (`AUTHGATE_TRUSTED_PROXIES`): then `X-Forwarded-For` is read from the
/// right, skipping trusted hops, and the first untrusted address is the client. Anything an
/// untrusted peer writes in that header is ignored, so it cannot dodge per-IP limits.
pub fn client_info(request: &Request, trusted_proxies: &[IpNet]) -> ClientInfo {
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let ip = request.remote_addr().as_socket_addr().map(|peer| {
        client_ip(
            peer.ip().to_canonical(),
            &forwarded.join(","),
            trusted_proxies,
        )
        .to_string()
    });
    ClientInfo {
        ip,
        user_agent: request
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect()),
    }
}

fn client_ip(peer: IpAddr, forwarded_for: &str, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .rsplit(',')
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
    {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` hop as a canonical address. A dual-stack proxy writes an IPv4 client
/// as `::ffff:a.b.c.d`: left mapped, every IPv4 client would fall into the one IPv6 /64 that
/// per-IP limits count, and one abuser could lock them all out. Some proxies add the client's
/// port (`1.2.3.4:5678`, `[2001:db8::1]:443`); an unparsed hop would stop the walk at the
/// proxy, and every client behind it would share the proxy's limit.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let bracketed = || hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(bracketed)
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let spoofed = "1.2.3.4";
        assert_eq!(client_ip(peer, spoofed, &[]), peer);
        assert_eq!(client_ip(peer, spoofed, &nets(&["192.168.0.0/16"])), peer);
        assert_eq!(
            client_ip(peer, "203.0.113.9", &nets(&["10.0.0.0/8"])).to_string(),
            "203.0.113.9"
        );
        // A client-written prefix is skipped: the rightmost untrusted hop is the client.
        assert_eq!(
            client_ip(
                peer,
                "6.6.6.6, 203.0.113.9, 10.0.0.7",
                &nets(&["10.0.0.0/8"])
            )
            .to_string(),
            "203.0.113.9"
        );
        assert_eq!(client_ip(peer, "garbage", &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(client_ip(peer, "1.2.3.4:", &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(client_ip(peer, "", &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn forwarded_for_hops_are_canonical_with_or_without_a_port() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        for (hop, client) in [
            ("::ffff:203.0.113.5", "203.0.113.5"),
            ("203.0.113.5:5678", "203.0.113.5"),
            ("[::ffff:203.0.113.5]:443", "203.0.113.5"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(client_ip(peer, hop, &trusted).to_string(), client, "{hop}");
        }
        // A mapped hop of a trusted proxy is skipped like its plain form.
        assert_eq!(
            client_ip(peer, "203.0.113.9, ::ffff:10.0.0.7", &trusted).to_string(),
            "203.0.113.9"
        );
    }
}
