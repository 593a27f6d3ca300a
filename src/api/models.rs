//! Response objects shared by several operations: the user object and token pairs.

use chrono::{DateTime, NaiveDate, Utc};
use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;
use poem_openapi::{Object, types::Example};
use uuid::Uuid;

use crate::domain::{Account, ClientInfo, TokenPair};

/// The user object. Never carries a password hash, code or token.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct User {
    pub id: Uuid,
    /// Lowercased when stored.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// International form, e.g. `+15551234567`.
    #[oai(nullable)]
    pub phone_number: Option<String>,
    pub role: String,
    /// True once the address was proven with a code.
    pub is_verified: bool,
    pub is_active: bool,
    pub profile: Profile,
    /// True when first and last name are set.
    pub profile_complete: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Object)]
pub struct Profile {
    /// Up to 1000 characters.
    pub bio: String,
    /// An http(s) URL.
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    /// `YYYY-MM-DD`.
    #[oai(nullable)]
    pub date_of_birth: Option<NaiveDate>,
}

impl From<Account> for User {
    fn from(account: Account) -> Self {
        let profile_complete = account.profile_complete();
        let Account { user, profile } = account;
        User {
            id: user.id,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            phone_number: user.phone_number,
            role: user.role,
            is_verified: user.is_verified,
            is_active: user.is_active,
            profile: Profile {
                bio: profile.bio,
                avatar_url: profile.avatar_url,
                date_of_birth: profile.date_of_birth,
            },
            profile_complete,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

impl Example for User {
    fn example() -> Self {
        let at = DateTime::parse_from_rfc3339("2026-11-22T09:30:00Z")
            .map_or_else(|_| Utc::now(), |t| t.to_utc());
        User {
            id: Uuid::from_u128(0x0b6c_4f1e_7a2d_4c3b_9e8f_1a2b_3c4d_5e6f),
            email: "jane@example.com".into(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone_number: Some("+15551234567".into()),
            role: "user".into(),
            is_verified: true,
            is_active: true,
            profile: Profile {
                bio: String::new(),
                avatar_url: None,
                date_of_birth: None,
            },
            profile_complete: true,
            created_at: at,
            updated_at: at,
            last_login_at: Some(at),
        }
    }
}

/// A fresh token pair.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Tokens {
    /// Access JWT for `Authorization: Bearer`.
    pub access: String,
    /// Opaque refresh token for `/auth/token/refresh`; it changes on every refresh.
    pub refresh: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// Seconds the refresh token is valid.
    pub refresh_expires_in: u64,
}

impl From<TokenPair> for Tokens {
    fn from(pair: TokenPair) -> Self {
        Tokens {
            access: pair.access,
            refresh: pair.refresh,
            token_type: "Bearer".into(),
            expires_in: pair.expires_in,
            refresh_expires_in: pair.refresh_expires_in,
        }
    }
}

impl Example for Tokens {
    fn example() -> Self {
        Tokens {
            access: "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl".into(),
            refresh: "Xq3v0yJ8kM2pQ7sT1wZ4bN6cR9dF5gH0jL2mA8eU3iO".into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            refresh_expires_in: 86_400,
        }
    }
}

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
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    client
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
        assert_eq!(client_ip(peer, "", &nets(&["10.0.0.0/8"])), peer);
    }
}
