//! The `Date` header value, rendered at most once per second per reactor thread.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The status line of most responses, kept in front of the lines below: such a response's
/// head up to its own headers is one write.
const OK: &[u8] = b"HTTP/1.1 200 OK";
/// Everything a response head carries after its status line and before its own headers:
/// one write instead of four.
const PREFIX: &[u8] = b"\r\nServer: ringhop\r\nDate: ";
const LINES: usize = OK.len() + PREFIX.len() + 29 + 2;

struct Cached {
    /// When the rendered second ends (a comparison per response, no duration arithmetic).
    fresh_until: Option<Instant>,
    /// `OK`, `PREFIX`, the date, CRLF.
    lines: [u8; LINES],
}

thread_local! {
    static DATE: RefCell<Cached> = const {
        RefCell::new(Cached { fresh_until: None, lines: [b' '; LINES] })
    };
}

/// Calls `f` with `HTTP/1.1 200 OK\r\nServer: ringhop\r\nDate: <IMF-fixdate>\r\n`.
pub(crate) fn with_ok_server_and_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    with_lines(|lines| f(lines))
}

/// Calls `f` with `\r\nServer: ringhop\r\nDate: <IMF-fixdate>\r\n`, the date being e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn with_server_and_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    with_lines(|lines| f(&lines[OK.len()..]))
}

/// Calls `f` with the status line and the lines after it, rendered again when stale.
fn with_lines<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        let now = ringhop_runtime::time::now();
        let stale = cached.fresh_until.is_none_or(|until| now >= until);
        if stale {
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let secs = since_epoch.as_secs();
            let lines = &mut cached.lines;
            let (status, rest) = lines.split_at_mut(OK.len());
            status.copy_from_slice(OK);
            rest[..PREFIX.len()].copy_from_slice(PREFIX);
            rest[PREFIX.len()..PREFIX.len() + 29].copy_from_slice(&render(secs));
            lines[LINES - 2..].copy_from_slice(b"\r\n");
            // Until the wall clock's next second (not a second from now): the date lags
            // the clock by at most the coarse clock's turn.
            let left =
                Duration::from_secs(1) - Duration::from_nanos(since_epoch.subsec_nanos().into());
            cached.fresh_until = Some(now + left);
        }
        f(&cached.lines)
    })
}

/// Formats seconds since the epoch as an IMF-fixdate (RFC 9110 §5.6.7).
pub(crate) fn render(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);

    let mut out = [0u8; 29];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    two(&mut out[5..7], day as u64);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let year = year as u64;
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    out[16] = b' ';
    two(&mut out[17..19], hour);
    out[19] = b':';
    two(&mut out[20..22], minute);
    out[22] = b':';
    two(&mut out[23..25], second);
    out[25..29].copy_from_slice(b" GMT");
    out
}

fn two(out: &mut [u8], value: u64) {
    out[0] = b'0' + (value / 10 % 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::{render, with_ok_server_and_date, with_server_and_date};

    #[test]
    fn server_and_date_lines_are_well_formed() {
        let lines = with_server_and_date(|lines| lines.to_vec());
        let text = std::str::from_utf8(&lines).unwrap();
        assert!(
            text.starts_with("\r\nServer: ringhop\r\nDate: "),
            "{text:?}"
        );
        assert!(text.ends_with(" GMT\r\n"), "{text:?}");
        assert_eq!(text.len(), "\r\nServer: ringhop\r\nDate: ".len() + 29 + 2);
    }

    #[test]
    fn the_ok_status_line_comes_before_the_same_lines() {
        let with_status = with_ok_server_and_date(|lines| lines.to_vec());
        let lines = with_server_and_date(|lines| lines.to_vec());
        let (status, rest) = with_status.split_at(15);
        assert_eq!(status, b"HTTP/1.1 200 OK");
        assert_eq!(rest.len(), lines.len());
        assert!(rest.starts_with(b"\r\nServer: ringhop\r\nDate: ") && rest.ends_with(b" GMT\r\n"));
    }

    #[test]
    fn renders_imf_fixdate() {
        assert_eq!(&render(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&render(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&render(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
