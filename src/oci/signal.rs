//! Stop signals as numbers: the image's STOPSIGNAL, and the CRI `Signal` enum both ways.

use std::str::FromStr;

use nix::sys::signal::Signal;
use oci_spec::image::ImageConfiguration;

use super::{SpecError, invalid};
use crate::api;

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

/// The number of a CRI `Signal` (`ContainerConfig.stop_signal`); `None` for RUNTIME_DEFAULT,
/// which leaves the image's STOPSIGNAL.
pub fn from_cri(signal: i32) -> Result<Option<i32>, SpecError> {
    let known = api::Signal::try_from(signal)
        .map_err(|_| invalid(format!("unknown stop signal {signal}")))?;
    if known == api::Signal::RuntimeDefault {
        return Ok(None);
    }
    // SIGNAL_SIGRTMINPLUS3 → SIGRTMIN+3, SIGNAL_SIGRTMAXMINUS2 → SIGRTMAX-2.
    let name = known.as_str_name().trim_start_matches("SIGNAL_");
    let name = name.replace("PLUS", "+").replace("MINUS", "-");
    let number = match name.as_str() {
        // Aliases nix does not name.
        "SIGCLD" => libc::SIGCHLD,
        "SIGPOLL" => libc::SIGIO,
        "SIGIOT" => libc::SIGABRT,
        other => parse_signal(other)?,
    };
    Ok(Some(number))
}

/// The CRI `Signal` of a signal number (the first name when it has aliases).
pub fn to_cri(number: i32) -> api::Signal {
    (1..=65)
        .filter_map(|v| api::Signal::try_from(v).ok())
        .find(|s| from_cri(*s as i32).ok().flatten() == Some(number))
        .unwrap_or(api::Signal::RuntimeDefault)
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

#[cfg(test)]
mod cri_tests {
    use super::*;

    #[test]
    fn cri_signals_map_to_numbers_and_back() {
        let number = |s: api::Signal| from_cri(s as i32).unwrap();
        assert_eq!(number(api::Signal::RuntimeDefault), None);
        assert_eq!(number(api::Signal::Sigterm), Some(libc::SIGTERM));
        assert_eq!(number(api::Signal::Sigcld), Some(libc::SIGCHLD));
        assert_eq!(
            number(api::Signal::Sigrtminplus3),
            Some(libc::SIGRTMIN() + 3)
        );
        assert_eq!(
            number(api::Signal::Sigrtmaxminus2),
            Some(libc::SIGRTMAX() - 2)
        );
        assert_eq!(number(api::Signal::Sigrtmax), Some(libc::SIGRTMAX()));
        assert_eq!(to_cri(libc::SIGQUIT), api::Signal::Sigquit);
        assert_eq!(to_cri(libc::SIGCHLD), api::Signal::Sigchld);
        assert_eq!(to_cri(libc::SIGRTMIN() + 3), api::Signal::Sigrtminplus3);
    }

    #[test]
    fn every_cri_signal_has_a_number_and_unknown_values_are_refused() {
        for v in 1..=65 {
            assert!(from_cri(v).unwrap().is_some(), "{v}");
        }
        assert!(matches!(from_cri(66), Err(SpecError::InvalidArgument(_))));
    }
}
