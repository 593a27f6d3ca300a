//! What a person sees of a trusted device: its browser, operating system and kind, read from
//! the user agent when the device is trusted (not on every request) and stored with it.
//!
//! The parsing is woothee's: its rules are compiled in, so there is no data file to ship or
//! load. Browsers froze the parts of the user agent it reads (the OS version on Windows and
//! macOS, the device model on Android), so an old rule set still reads new browsers; the
//! same freeze means Windows 11 reports itself as Windows 10, and an iPad whose Safari asks
//! for desktop sites (the default) as a Mac.

use serde::{Deserialize, Serialize};
use woothee::parser::{Parser, WootheeResult};

/// What woothee reports for anything it could not read.
const UNKNOWN: &str = "UNKNOWN";

/// The kind of device, serialised in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    /// A computer: Windows, macOS, Linux, ChromeOS.
    Desktop,
    /// A phone.
    Mobile,
    /// An iPad or an Android tablet.
    Tablet,
    /// A program rather than a person's browser: a crawler, or an HTTP library such as curl.
    Bot,
    /// Not recognised, or neither computer, phone nor tablet (a game console, a TV).
    Unknown,
}

impl DeviceType {
    /// The lowercase name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Unknown => "unknown",
        }
    }
}

/// A device as a person would name it: `Chrome 120` on `Windows 10`, a desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    /// The browser and its major version (`Chrome 120`, `Safari 17`), the crawler (`Googlebot`)
    /// or the HTTP library (`curl`); `None` when unreadable.
    pub browser: Option<String>,
    /// The operating system (`Windows 10`, `macOS`, `Linux`), with its version where the user
    /// agent still tells it (`iOS 17.1`, `Android 14`); `None` when unreadable.
    pub os: Option<String>,
    /// Desktop, mobile, tablet, bot or unknown.
    pub device_type: DeviceType,
}

/// Describes the device behind `user_agent`; a missing or unreadable one gives `None`s and
/// [`DeviceType::Unknown`].
pub fn describe(user_agent: Option<&str>) -> DeviceDescription {
    let user_agent = user_agent.unwrap_or_default();
    match Parser::new().parse(user_agent) {
        Some(parsed) => DeviceDescription {
            browser: browser(&parsed),
            os: os(&parsed),
            device_type: device_type(&parsed, user_agent),
        },
        None => DeviceDescription {
            browser: None,
            os: None,
            device_type: DeviceType::Unknown,
        },
    }
}

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

fn browser(parsed: &WootheeResult<'_>) -> Option<String> {
    let name = known(parsed.name)?;
    if name == "HTTP Library" {
        // woothee names the library (curl, wget, …) in the version field.
        return Some(known(parsed.version).unwrap_or(name).to_owned());
    }
    if parsed.category == "crawler" {
        return Some(name.to_owned());
    }
    let major_version = known(parsed.version)
        .and_then(|version| version.split('.').next())
        .filter(|major| !major.is_empty());
    Some(match major_version {
        Some(major) => format!("{name} {major}"),
        None => name.to_owned(),
    })
}

fn os(parsed: &WootheeResult<'_>) -> Option<String> {
    let name = known(parsed.os)?;
    let version = known(&parsed.os_version);
    // Only iOS, iPadOS and Android still carry a real version in the user agent; woothee
    // names the first two after the device.
    let with_version = |name: &str| match version {
        Some(version) => format!("{name} {version}"),
        None => name.to_owned(),
    };
    Some(match name {
        "iPhone" | "iPod" => with_version("iOS"),
        "iPad" => with_version("iPadOS"),
        "Android" => with_version("Android"),
        // Frozen at 10.15.7 by every browser, so not worth showing.
        "Mac OSX" => "macOS".to_owned(),
        other => other.to_owned(),
    })
}

fn device_type(parsed: &WootheeResult<'_>, user_agent: &str) -> DeviceType {
    match parsed.category {
        "pc" => DeviceType::Desktop,
        // woothee has no tablets. iPads name themselves; Android tablets are the Android
        // devices whose browser leaves out the `Mobile` token, as Google asks of them.
        "smartphone" if parsed.os == "iPad" => DeviceType::Tablet,
        "smartphone" if parsed.os == "Android" && !user_agent.contains("Mobile") => {
            DeviceType::Tablet
        }
        "smartphone" | "mobilephone" => DeviceType::Mobile,
        // Crawlers, and the rest woothee knows as non-browsers: HTTP libraries, feed readers.
        "crawler" | "misc" => DeviceType::Bot,
        // Game consoles and TVs, and whatever was not recognised.
        _ => DeviceType::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_described(user_agent: &str, browser: &str, os: &str, device_type: DeviceType) {
        assert_eq!(
            describe(Some(user_agent)),
            DeviceDescription {
                browser: Some(browser.into()),
                os: Some(os.into()),
                device_type,
            },
            "{user_agent}"
        );
    }

    #[test]
    fn chrome_on_windows_is_a_desktop() {
        assert_described(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            "Chrome 120",
            "Windows 10",
            DeviceType::Desktop,
        );
        assert_described(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            "Edge 120",
            "Windows 10",
            DeviceType::Desktop,
        );
    }

    #[test]
    fn safari_on_iphone_is_a_mobile() {
        assert_described(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17",
            "iOS 17.1",
            DeviceType::Mobile,
        );
    }

    #[test]
    fn chrome_on_an_android_phone_is_a_mobile() {
        assert_described(
            "Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome 120",
            "Android 14",
            DeviceType::Mobile,
        );
    }

    #[test]
    fn ipads_and_android_tablets_are_tablets() {
        assert_described(
            "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17",
            "iPadOS 17.1",
            DeviceType::Tablet,
        );
        assert_described(
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            "Chrome 120",
            "Android 13",
            DeviceType::Tablet,
        );
    }

    #[test]
    fn firefox_on_linux_and_safari_on_a_mac_are_desktops() {
        assert_described(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox 121",
            "Linux",
            DeviceType::Desktop,
        );
        assert_described(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            "Safari 17",
            "macOS",
            DeviceType::Desktop,
        );
    }

    #[test]
    fn curl_and_crawlers_are_bots() {
        assert_eq!(
            describe(Some("curl/8.5.0")),
            DeviceDescription {
                browser: Some("curl".into()),
                os: None,
                device_type: DeviceType::Bot,
            }
        );
        assert_eq!(
            describe(Some(
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
            )),
            DeviceDescription {
                browser: Some("Googlebot".into()),
                os: None,
                device_type: DeviceType::Bot,
            }
        );
    }

    #[test]
    fn a_missing_or_unreadable_user_agent_is_unknown() {
        let unknown = DeviceDescription {
            browser: None,
            os: None,
            device_type: DeviceType::Unknown,
        };
        for user_agent in [
            None,
            Some(""),
            Some("-"),
            Some("garbage"),
            Some("okhttp/4.12.0"),
        ] {
            assert_eq!(describe(user_agent), unknown, "{user_agent:?}");
        }
    }

    #[test]
    fn device_types_serialise_as_their_lowercase_names() {
        for device_type in [
            DeviceType::Desktop,
            DeviceType::Mobile,
            DeviceType::Tablet,
            DeviceType::Bot,
            DeviceType::Unknown,
        ] {
            let json = serde_json::to_string(&device_type).unwrap();
            assert_eq!(json, format!("\"{}\"", device_type.as_str()));
            assert_eq!(
                serde_json::from_str::<DeviceType>(&json).unwrap(),
                device_type
            );
        }
    }
}
