//! The image's STOPSIGNAL as a signal number.

use std::str::FromStr;

use nix::sys::signal::Signal;
use oci_spec::image::ImageConfiguration;

use super::{SpecError, invalid};

/// STOPSIGNAL of the image config ("SIGTERM", "TERM", "15", "SIGRTMIN+3"...) → signal number;
/// SIGTERM (15) when absent.
pub fn stop_signal(image: &ImageConfiguration) -> Result<i32, SpecError> {
    let raw = image
        .config()
        .as_ref()
        .and_then(|c| c.stop_signal().clone())
        .unwrap_or_default();
    parse_signal(&raw)
}

/// Parse a signal name or number; "" is SIGTERM.
pub fn parse_signal(raw: &str) -> Result<i32, SpecError> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(libc::SIGTERM);
    }
    let bad = || invalid(format!("invalid stop signal {raw:?}"));
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, SpecError> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = base + sign * off;
        if (rtmin..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        return match rest.strip_prefix('+') {
            Some(off) => rt(rtmin, off, 1),
            None if rest.is_empty() => Ok(rtmin),
            None => Err(bad()),
        };
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        return match rest.strip_prefix('-') {
            Some(off) => rt(rtmax, off, -1),
            None if rest.is_empty() => Ok(rtmax),
            None => Err(bad()),
        };
    }
    Signal::from_str(&name).map(|s| s as i32).map_err(|_| bad())
}
