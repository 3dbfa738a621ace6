use super::*;
use proptest::prelude::*;

/// 1994-11-06T08:49:37Z, RFC 9110's example.
const EXAMPLE: i64 = 784_111_777;

#[test]
fn formats_imf_fixdate() {
    assert_eq!(format_http_date(EXAMPLE), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_eq!(
        format_http_date(951_782_400),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(format_http_date(MIN_SECS), "Sat, 01 Jan 0000 00:00:00 GMT");
    assert_eq!(format_http_date(MAX_SECS), "Fri, 31 Dec 9999 23:59:59 GMT");
}

#[test]
fn out_of_range_times_are_clamped() {
    assert_eq!(format_http_date(i64::MIN), format_http_date(MIN_SECS));
    assert_eq!(format_http_date(i64::MAX), format_http_date(MAX_SECS));
    assert_eq!(format_http_date(MAX_SECS + 1), format_http_date(MAX_SECS));
}

#[test]
fn parses_the_three_forms() {
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(EXAMPLE)
    );
    assert_eq!(
        parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
        Some(EXAMPLE)
    );
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(EXAMPLE));
    assert_eq!(parse_http_date("Sun Nov 06 08:49:37 1994"), Some(EXAMPLE));
    assert_eq!(
        parse_http_date("Wednesday, 31-Dec-69 23:59:59 GMT"),
        Some(3_155_759_999)
    );
    assert_eq!(parse_http_date("Thu Jan  1 00:00:00 1970"), Some(0));
}

#[test]
fn two_digit_years_follow_rfc_9110_near_now() {
    let now_2026 = parse_http_date("Tue, 01 Dec 2026 00:00:00 GMT").unwrap();
    let year =
        |s: &str| parse_http_date_at(s, now_2026).map(|t| CivilTime::from_utc(t).unwrap().year);
    // 2076 is 50 years ahead: not "more than 50", so kept.
    assert_eq!(year("Sunday, 01-Jan-76 00:00:00 GMT"), Some(2076));
    assert_eq!(year("Sunday, 01-Jan-77 00:00:00 GMT"), Some(1977));
    assert_eq!(year("Sunday, 06-Nov-94 08:49:37 GMT"), Some(1994));
    assert_eq!(year("Sunday, 01-Jan-26 00:00:00 GMT"), Some(2026));
    assert_eq!(year("Sunday, 01-Jan-00 00:00:00 GMT"), Some(2000));
    assert_eq!(year("Sunday, 01-Jan-70 00:00:00 GMT"), Some(2070));
    // The other forms do not depend on now.
    assert_eq!(
        parse_http_date_at("Sun, 06 Nov 1994 08:49:37 GMT", 0),
        Some(EXAMPLE)
    );
    let in_1994 = parse_http_date_at("Sunday, 06-Nov-94 08:49:37 GMT", EXAMPLE);
    assert_eq!(in_1994, Some(EXAMPLE));
    let year_1950 = parse_http_date_at("Sunday, 01-Jan-99 00:00:00 GMT", -631_152_000)
        .map(|t| CivilTime::from_utc(t).unwrap().year);
    assert_eq!(year_1950, Some(1999));
}

#[test]
fn leap_days_and_leap_seconds() {
    assert!(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").is_some());
    assert_eq!(parse_http_date("Wed, 29 Feb 2023 00:00:00 GMT"), None);
    assert_eq!(parse_http_date("Thu, 29 Feb 1900 00:00:00 GMT"), None);
    assert!(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").is_some());
    assert_eq!(
        parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"),
        parse_http_date("Sun, 01 Jan 2017 00:00:00 GMT")
    );
}

#[test]
fn refuses_everything_else() {
    for s in [
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 32 Oct 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\r\nX: y",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        "1994-11-06T08:49:37Z",
        "784111777",
        "Sün, 06 Nov 1994 08:49:37 GMT",
    ] {
        assert_eq!(parse_http_date(s), None, "{s:?}");
    }
}

#[test]
fn the_weekday_is_not_checked_against_the_date() {
    assert_eq!(
        parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
        Some(EXAMPLE)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn format_then_parse_is_the_same_second(secs in MIN_SECS..=MAX_SECS) {
        let s = format_http_date(secs);
        prop_assert_eq!(s.len(), 29);
        prop_assert_eq!(parse_http_date(&s), Some(secs));
    }

    #[test]
    fn every_form_of_a_date_parses_alike(secs in 0i64..4_102_444_800) {
        // 1970 to 2099: the years an RFC 850 date with the fixed pivot and
        // an asctime date both reach.
        let c = CivilTime::from_utc(secs).unwrap();
        let wd = usize::from(c.weekday()) - 1;
        let mon = MONTHS[usize::from(c.month) - 1];
        let rfc850 = format!(
            "{}, {:02}-{mon}-{:02} {:02}:{:02}:{:02} GMT",
            LONG_DAYS[wd], c.day, c.year % 100, c.hour, c.minute, c.second
        );
        let asctime = format!(
            "{} {mon} {:>2} {:02}:{:02}:{:02} {}",
            DAYS[wd], c.day, c.hour, c.minute, c.second, c.year
        );
        let expect_850 = if c.year < 2070 { Some(secs) } else { None };
        if let Some(e) = expect_850 {
            prop_assert_eq!(parse_http_date(&rfc850), Some(e));
        }
        prop_assert_eq!(parse_http_date(&asctime), Some(secs));
    }

    #[test]
    fn arbitrary_text_parses_only_to_a_showable_date(s in "\\PC{0,40}") {
        for t in [
            parse_http_date(&s),
            parse_http_date_at(&s, i64::MIN),
            parse_http_date_at(&s, i64::MAX),
        ]
        .into_iter()
        .flatten()
        {
            // A leap second on the last day shows as the second after.
            prop_assert!((MIN_SECS..=MAX_SECS + 1).contains(&t));
        }
    }

    #[test]
    fn near_any_date_imf_text_survives_noise(secs in MIN_SECS..=MAX_SECS, cut in 0usize..29) {
        let mut s = format_http_date(secs);
        s.remove(cut);
        prop_assert_eq!(parse_http_date(&s), None);
    }

    #[test]
    fn any_second_formats(secs in any::<i64>()) {
        let s = format_http_date(secs);
        prop_assert_eq!(parse_http_date(&s), Some(secs.clamp(MIN_SECS, MAX_SECS)));
    }
}
