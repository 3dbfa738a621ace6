//! Retention on synthetic histories, in a fake zone one hour east of UTC:
//! the SPEC grammar, restic's documented examples, ties, order, `within`'s
//! boundaries, and properties over arbitrary histories.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::calendar::CivilTime;

/// The fake zone's offset from UTC.
const OFFSET: i64 = 3_600;

/// A version at epoch second `time`, its civil fields in the fake zone.
fn v(time: i64) -> Version {
    let civil = CivilTime::from_utc(time + OFFSET).unwrap_or_else(|| panic!("{time}"));
    Version { time, civil }
}

/// The epoch second of a local date and time in the fake zone.
fn local(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> i64 {
    let c = CivilTime {
        year,
        month,
        day,
        hour,
        minute,
        second: 0,
    };
    assert!(c.is_valid(), "{c:?}");
    c.utc_secs() - OFFSET
}

fn keep(spec: &str) -> Keep {
    parse_keep(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// The times of the versions `spec` keeps, newest first.
fn kept(spec: &str, times: &[i64], now: i64) -> Vec<i64> {
    let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
    let mut out: Vec<i64> = decide(&keep(spec), &versions, now)
        .into_iter()
        .zip(times)
        .filter_map(|(k, &t)| k.then_some(t))
        .collect();
    out.sort_by(|a, b| b.cmp(a));
    out
}

/// One version an hour at minute 0, local, for `days` days from `start`.
fn hourly_for(start: i64, days: i64) -> Vec<i64> {
    (0..days * 24).map(|h| start + h * 3_600).collect()
}

// ---- the spec ---------------------------------------------------------

#[test]
fn specs_parse_in_any_order_and_print_canonically() {
    for (spec, printed) in [
        ("all", "all"),
        ("last=10", "last=10"),
        (
            "last=10,hourly=24,daily=30,weekly=26,monthly=24,within=7d",
            "last=10,hourly=24,daily=30,weekly=26,monthly=24,within=7d",
        ),
        ("within=36h,yearly=3,daily=7", "daily=7,yearly=3,within=36h"),
        ("within=2w", "within=2w"),
        ("within=007d,monthly=012", "monthly=12,within=7d"),
        ("daily=4294967295", "daily=4294967295"),
    ] {
        let k = keep(spec);
        assert_eq!(k.to_string(), printed, "{spec}");
        assert_eq!(keep(printed), k, "{printed} reads back");
    }
    let k = keep("within=36h,yearly=3,daily=7");
    assert_eq!(k.count(Rule::Daily), Some(7));
    assert_eq!(k.count(Rule::Yearly), Some(3));
    assert_eq!(k.count(Rule::Last), None);
    assert_eq!(k.within().map(|s| s.secs()), Some(36 * 3_600));
    assert!(!k.is_all());
    assert!(keep("all").is_all());
    assert_eq!(keep("all"), Keep::ALL);
}

#[test]
fn the_default_is_its_documented_spec() {
    assert_eq!(default_keep(), Keep::DEFAULT);
    assert_eq!(keep(DEFAULT_SPEC), Keep::DEFAULT);
    assert_eq!(Keep::DEFAULT.to_string(), DEFAULT_SPEC);
    assert_eq!(
        Keep::DEFAULT.within().map(|s| s.secs()),
        Some(7 * 86_400),
        "nothing younger than 7 days is removed"
    );
}

#[test]
fn bad_specs_are_refused_naming_the_grammar() {
    use KeepError as E;
    let unknown = |s: &str| E::Unknown(s.to_string());
    let bad = |key, value: &str| E::BadCount {
        key,
        value: value.to_string(),
    };
    for (spec, want) in [
        ("", E::Empty),
        ("all,daily=1", E::AllWithOthers),
        ("daily=1,all", E::AllWithOthers),
        ("all,all", E::AllWithOthers),
        ("ALL", unknown("ALL")),
        ("all ", unknown("all ")),
        ("daily", unknown("daily")),
        ("Daily=1", unknown("Daily=1")),
        ("daily =1", unknown("daily =1")),
        (" daily=1", unknown(" daily=1")),
        ("keep-daily=1", unknown("keep-daily=1")),
        ("tag=x", unknown("tag=x")),
        ("daily=1,", unknown("")),
        (",daily=1", unknown("")),
        ("daily=1,,weekly=1", unknown("")),
        ("daily=1;weekly=1", bad("daily", "1;weekly=1")),
        ("daily=0", bad("daily", "0")),
        ("last=00", bad("last", "00")),
        ("daily=-1", bad("daily", "-1")),
        ("daily=+1", bad("daily", "+1")),
        ("daily=1x", bad("daily", "1x")),
        ("daily=", bad("daily", "")),
        ("daily= 1", bad("daily", " 1")),
        ("hourly=4294967296", bad("hourly", "4294967296")),
        ("daily=unlimited", bad("daily", "unlimited")),
        ("daily=1,daily=2", E::Twice("daily")),
        ("within=7d,daily=1,within=1d", E::Twice("within")),
        ("within=0d", E::ZeroWithin("0d".to_string())),
        ("within=000s", E::ZeroWithin("000s".to_string())),
        (
            "within=7",
            E::BadWithin(DurationError::Form("7".to_string())),
        ),
        (
            "within=1y2m",
            E::BadWithin(DurationError::Form("1y2m".to_string())),
        ),
        (
            "within=1d12h",
            E::BadWithin(DurationError::Form("1d12h".to_string())),
        ),
        (
            "within=9999999999999w",
            E::BadWithin(DurationError::TooLarge("9999999999999w".to_string())),
        ),
    ] {
        let grammar = match want {
            E::BadWithin(_) => crate::calendar::DURATION_FORMS,
            _ => SPEC_FORMS,
        };
        let got = parse_keep(spec);
        assert_eq!(got, Err(want), "{spec:?}");
        let msg = got.expect_err(spec).to_string();
        assert!(msg.ends_with(grammar), "{spec:?}: {msg}");
    }
    assert_eq!(
        parse_keep("daily=0").expect_err("0").to_string(),
        format!(
            "'daily=0': N must be a whole number from 1 to 4294967295 \
             (leave a rule out to not use it); {SPEC_FORMS}"
        )
    );
    assert_eq!(
        parse_keep("tag=x").expect_err("tag").to_string(),
        format!("'tag=x': no such rule; {SPEC_FORMS}")
    );
}

// ---- restic's examples and the bucket rules ---------------------------

#[test]
fn restic_example_twelve_sundays_with_daily_4_keeps_the_last_four() {
    // doc/060_forget.rst: one backup every Sunday at 11:00 for 12 weeks.
    let start = local(2019, 9, 1, 11, 0);
    let sundays: Vec<i64> = (0..12).map(|w| start + w * 7 * 86_400).collect();
    let now = local(2019, 11, 18, 0, 0);
    let want: Vec<i64> = sundays.iter().rev().take(4).copied().collect();
    assert_eq!(kept("daily=4", &sundays, now), want);
    assert_eq!(want.last(), Some(&local(2019, 10, 27, 11, 0)));
}

#[test]
fn an_hourly_history_of_three_days_with_daily_2_keeps_two_evenings() {
    let start = local(2026, 5, 1, 0, 0);
    let times = hourly_for(start, 3);
    let now = local(2026, 5, 4, 0, 0);
    assert_eq!(
        kept("daily=2", &times, now),
        [local(2026, 5, 3, 23, 0), local(2026, 5, 2, 23, 0)]
    );
    // N not used up at the oldest version: restic keeps the oldest too.
    let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
    let why = explain(&keep("daily=5"), &versions, now);
    let kept: Vec<(i64, String)> = times
        .iter()
        .zip(&why)
        .filter(|(_, r)| r.is_kept())
        .map(|(&t, r)| (t, r.to_string()))
        .collect();
    assert_eq!(
        kept,
        [
            (start, "oldest daily".to_string()),
            (local(2026, 5, 1, 23, 0), "daily".to_string()),
            (local(2026, 5, 2, 23, 0), "daily".to_string()),
            (local(2026, 5, 3, 23, 0), "daily".to_string()),
        ]
    );
    assert_eq!(
        self::kept("hourly=24", &times, now),
        times.iter().rev().take(24).copied().collect::<Vec<_>>()
    );
    assert_eq!(
        self::kept("last=3", &times, now),
        times.iter().rev().take(3).copied().collect::<Vec<_>>()
    );
}

#[test]
fn restic_example_daily_weekly_monthly_yearly_over_three_years() {
    // doc/060_forget.rst's "one backup every day", over three years.
    let first = local(2024, 1, 1, 11, 0);
    let times: Vec<i64> = (0..1_096).map(|d| first + d * 86_400).collect();
    assert_eq!(times.last(), Some(&local(2026, 12, 31, 11, 0)));
    let now = local(2027, 1, 1, 0, 0);
    let day = |m, d| local(2026, m, d, 11, 0);
    let mut want: Vec<i64> = (25..=31).map(|d| day(12, d)).collect(); // daily=7
    want.extend([day(12, 20), day(12, 13), day(12, 6)]); // weekly=5: Dec 31, 27 are daily
    let month_ends = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30];
    want.extend((1..=11).zip(month_ends).map(|(m, d)| day(m, d))); // monthly=12
    want.extend([
        local(2025, 12, 31, 11, 0),
        local(2024, 12, 31, 11, 0),
        first,
    ]); // yearly=75
    want.sort_by(|a, b| b.cmp(a));
    let spec = "daily=7,weekly=5,monthly=12,yearly=75";
    assert_eq!(kept(spec, &times, now), want);

    let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
    let why = explain(&keep(spec), &versions, now);
    let count = |r: Reason| why.iter().filter(|w| w.contains(r)).count();
    assert_eq!(count(Reason::Rule(Rule::Daily)), 7);
    assert_eq!(count(Reason::Rule(Rule::Weekly)), 5);
    assert_eq!(count(Reason::Rule(Rule::Monthly)), 12);
    assert_eq!(count(Reason::Rule(Rule::Yearly)), 3);
    assert_eq!(count(Reason::Oldest(Rule::Yearly)), 1);
    assert_eq!(
        why.first().map(|r| r.to_string()).as_deref(),
        Some("oldest yearly")
    );
    assert_eq!(
        why.last().map(|r| r.to_string()).as_deref(),
        Some("daily, weekly, monthly, yearly")
    );
}

#[test]
fn weeks_are_iso_weeks_of_the_local_calendar() {
    // Sunday 2026-01-04 23:30 local is in ISO week 1 (Monday to Sunday);
    // Monday 00:30 local is in week 2, although it is still Sunday 23:30 in
    // UTC: the buckets follow the local fields.
    let sunday = local(2026, 1, 4, 23, 30);
    let monday = local(2026, 1, 5, 0, 30);
    let now = local(2026, 2, 1, 0, 0);
    assert_eq!(kept("weekly=2", &[sunday, monday], now), [monday, sunday]);
    let earlier = local(2026, 1, 1, 10, 0); // Thursday, week 1 as well
    assert_eq!(kept("weekly=1", &[earlier, sunday, monday], now), [monday]);
    // Days are local too: 23:30 and 00:30 local are two days.
    assert_eq!(kept("daily=1", &[sunday, monday], now), [monday]);
    assert_eq!(kept("daily=2", &[sunday, monday], now), [monday, sunday]);
}

#[test]
fn two_versions_in_one_hour_keep_the_newer() {
    let a = local(2026, 5, 1, 9, 30);
    let b = local(2026, 5, 1, 10, 5);
    let c = local(2026, 5, 1, 10, 45);
    let now = local(2026, 5, 2, 0, 0);
    assert_eq!(kept("hourly=1", &[a, b, c], now), [c]);
    assert_eq!(kept("hourly=2", &[a, b, c], now), [c, a]);
    // N left at the oldest, which is a bucket of its own anyway: 10:05
    // still loses its hour to 10:45.
    assert_eq!(kept("hourly=3", &[a, b, c], now), [c, a]);
    // The oldest sharing its hour with a newer one, N left: kept as oldest.
    assert_eq!(kept("hourly=3", &[b, c], now), [c, b]);
    assert_eq!(kept("hourly=1", &[b, c], now), [c]);
}

#[test]
fn equal_times_count_the_later_in_the_list_as_newer() {
    let t = local(2026, 5, 1, 12, 0);
    let now = t + 86_400;
    let mut x = v(t);
    x.civil.minute = 1; // tell them apart; the time is what orders them
    let y = v(t);
    assert_eq!(decide(&keep("last=1"), &[x, y], now), [false, true]);
    assert_eq!(decide(&keep("last=1"), &[y, x], now), [false, true]);
    assert_eq!(decide(&keep("last=2"), &[y, x], now), [true, true]);
    assert_eq!(decide(&keep("within=1s"), &[y, x], now), [true, true]);
}

#[test]
fn all_keeps_everything_and_nothing_is_no_versions() {
    let times = hourly_for(local(2020, 1, 1, 0, 0), 40);
    let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
    let why = explain(&Keep::ALL, &versions, 0);
    assert!(why.iter().all(|r| r.to_string() == "all"));
    assert_eq!(why.len(), versions.len());
    for spec in ["all", "last=1", DEFAULT_SPEC] {
        assert!(decide(&keep(spec), &[], 0).is_empty(), "{spec}");
    }
    let one = [v(local(2026, 5, 1, 12, 0))];
    assert_eq!(decide(&keep("last=1"), &one, 0), [true]);
}

#[test]
fn unsorted_input_is_decided_as_sorted_in_its_own_order() {
    let times = hourly_for(local(2026, 4, 1, 0, 0), 30);
    let now = local(2026, 6, 1, 0, 0);
    let spec = "last=5,hourly=10,daily=7,weekly=2,within=36h";
    let sorted: Vec<Version> = times.iter().map(|&t| v(t)).collect();
    let want = explain(&keep(spec), &sorted, now);
    // A fixed shuffle: position i takes version (i * 37) mod n (37 and 720
    // are coprime).
    let n = sorted.len();
    let perm: Vec<usize> = (0..n).map(|i| i * 37 % n).collect();
    let shuffled: Vec<Version> = perm.iter().map(|&j| sorted[j]).collect();
    let got = explain(&keep(spec), &shuffled, now);
    for (i, &j) in perm.iter().enumerate() {
        assert_eq!(got[i], want[j], "version {j}");
    }
    let reversed: Vec<Version> = sorted.iter().rev().copied().collect();
    let mut back = explain(&keep(spec), &reversed, now);
    back.reverse();
    assert_eq!(back, want);
}

// ---- within -------------------------------------------------------------

#[test]
fn within_counts_back_from_the_newest_version_strictly() {
    let newest = local(2026, 5, 1, 12, 0);
    let week = 7 * 86_400;
    let times = [newest, newest - week + 1, newest - week, newest - week - 1];
    // Long after the newest: the history of a client that stopped is kept.
    let now = newest + 365 * 86_400;
    assert_eq!(kept("within=7d", &times, now), [newest, newest - week + 1]);
    assert_eq!(kept("within=1w", &times, now), [newest, newest - week + 1]);
    assert_eq!(
        kept("within=168h", &times, now),
        [newest, newest - week + 1]
    );
}

#[test]
fn within_ignores_versions_from_the_future_as_its_reference() {
    let now = local(2026, 5, 1, 12, 0);
    let future = now + 3 * 86_400;
    let newest = now - 100;
    let day = 86_400;
    let times = [future, newest, newest - day + 1, newest - day];
    assert_eq!(
        kept("within=1d", &times, now),
        [future, newest, newest - day + 1]
    );
    // Only versions from the future: measured from now, all kept.
    assert_eq!(
        kept("within=1d", &[now + 10, now + 5 * day], now),
        [now + 5 * day, now + 10]
    );
    let at_now = [now, now - day, now - day + 1];
    assert_eq!(kept("within=1d", &at_now, now), [now, now - day + 1]);
}

#[test]
fn reasons_name_every_rule_that_keeps() {
    let t = local(2026, 5, 1, 12, 0);
    let why = explain(&keep("last=1,daily=1,within=1h"), &[v(t)], t);
    let one = why.first().copied().unwrap_or_default();
    assert_eq!(one.to_string(), "within, last, daily");
    assert!(one.contains(Reason::Within));
    assert!(one.contains(Reason::Rule(Rule::Last)));
    assert!(!one.contains(Reason::Rule(Rule::Hourly)));
    assert_eq!(
        one.iter().collect::<Vec<_>>(),
        [
            Reason::Within,
            Reason::Rule(Rule::Last),
            Reason::Rule(Rule::Daily)
        ]
    );
    assert_eq!(Reasons::default().to_string(), "none");
    assert!(!Reasons::default().is_kept());
}

// ---- properties ---------------------------------------------------------

/// A history: up to 60 times within about two years of 2026-01-01,
/// clustered enough to share hours and days.
fn history() -> impl Strategy<Value = Vec<i64>> {
    let base = 1_767_225_600i64;
    vec(
        prop_oneof![
            (0i64..2 * 366 * 86_400).prop_map(move |d| base + d),
            (0i64..7_200).prop_map(move |d| base + 400 * 86_400 + d),
        ],
        0..60,
    )
}

fn spec() -> impl Strategy<Value = Keep> {
    let n = prop_oneof![Just(0u32), 1u32..5, 1u32..40];
    let unit = prop_oneof![
        Just(Unit::Second),
        Just(Unit::Minute),
        Just(Unit::Hour),
        Just(Unit::Day),
        Just(Unit::Week),
    ];
    (
        [n.clone(), n.clone(), n.clone(), n.clone(), n.clone(), n],
        proptest::option::of((1u64..100, unit)),
    )
        .prop_map(|(counts, within)| Keep {
            all: false,
            counts,
            within: within.map(|(count, unit)| Span { count, unit }),
        })
        .prop_filter("a rule", |k| k.counts != [0; 6] || k.within.is_some())
}

proptest! {
    #[test]
    fn the_default_never_removes_a_version_younger_than_7_days(
        times in history(),
        ago in 0i64..800 * 86_400,
    ) {
        let now = 1_767_225_600 + ago;
        let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
        let keep = decide(&default_keep(), &versions, now);
        for (t, k) in times.iter().zip(keep) {
            prop_assert!(k || *t <= now - 7 * 86_400, "removed {t}, now {now}");
        }
    }

    #[test]
    fn the_newest_is_kept_and_each_rule_keeps_at_most_n(
        times in history(),
        keep in spec(),
        now in 1_767_225_600i64..1_830_000_000,
    ) {
        let versions: Vec<Version> = times.iter().map(|&t| v(t)).collect();
        let why = explain(&keep, &versions, now);
        prop_assert_eq!(why.len(), versions.len());
        if let Some(newest) = times.iter().max() {
            let at = times.iter().rposition(|t| t == newest).unwrap_or(0);
            prop_assert!(why[at].is_kept());
        }
        for rule in RULES {
            let n = keep.count(rule).unwrap_or(0) as usize;
            let by = why
                .iter()
                .filter(|w| w.contains(Reason::Rule(rule)) || w.contains(Reason::Oldest(rule)))
                .count();
            prop_assert!(by <= n, "{} kept {by} of {n}", rule.key());
            if rule == Rule::Last {
                prop_assert_eq!(by, n.min(times.len()));
            }
        }
        prop_assert!(why.iter().all(|w| !w.contains(Reason::All)));
    }

    #[test]
    fn the_decision_follows_the_versions_not_their_order(
        times in history(),
        keep in spec(),
        now in 1_767_225_600i64..1_830_000_000,
    ) {
        let mut distinct = times.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let versions: Vec<Version> = distinct.iter().map(|&t| v(t)).collect();
        let forward = explain(&keep, &versions, now);
        let reversed: Vec<Version> = versions.iter().rev().copied().collect();
        let mut backward = explain(&keep, &reversed, now);
        backward.reverse();
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn a_spec_prints_and_parses_back(keep in spec()) {
        prop_assert_eq!(parse_keep(&keep.to_string()), Ok(keep));
    }
}
