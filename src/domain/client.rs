//! Who is calling, as far as the network tells.

use std::net::IpAddr;

/// Recorded on sessions and in the audit trail, and the subject of per-IP limits.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// What per-IP limits count: the address, but for IPv6 its /64, since one subscriber
    /// usually holds a whole /64 and could rotate through it. Requests whose address is
    /// unknown share one limit.
    pub fn limit_subject(&self) -> String {
        match self.ip.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(IpAddr::V6(ip))) => {
                let [a, b, c, d, ..] = ip.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Some(Ok(ip)) => ip.to_string(),
            _ => "unknown".into(),
        }
    }
}
