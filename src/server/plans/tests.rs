use super::*;
use proptest::prelude::*;

fn plan(paths: &[&[u8]], schedule: Schedule) -> Plan {
    Plan {
        paths: paths.iter().map(|p| p.to_vec()).collect(),
        excludes: Vec::new(),
        schedule,
        bwlimit: None,
    }
}

#[test]
fn the_example_of_the_documentation_reads() {
    let text = b"# rsb plans\n\
        [laptop]\n\
        path /home/ann\n\
        path /etc\n\
        exclude *.tmp\n\
        exclude cache/\n\
        watch 2s          # or: every 1h\n\
        bwlimit 10M       # optional\n\
        \n\
        [box]\r\n\
        path /srv\r\n\
        every 1h\r\n";
    let (plans, errors) = parse(text);
    assert_eq!(errors, vec![]);
    assert_eq!(
        plans["laptop"],
        Plan {
            paths: vec![b"/home/ann".to_vec(), b"/etc".to_vec()],
            excludes: vec!["*.tmp".into(), "cache/".into()],
            schedule: Schedule::Watch { delay_ms: 2000 },
            bwlimit: Some(10 << 20),
        }
    );
    assert_eq!(
        plans["box"],
        plan(&[b"/srv"], Schedule::Every { secs: 3600 })
    );
}

#[test]
fn the_file_the_server_writes_starts_with_its_documentation_and_reads_back() {
    let mut plans = BTreeMap::new();
    plans.insert(
        "a".to_string(),
        plan(&[b"/x"], Schedule::Watch { delay_ms: 10 }),
    );
    plans.insert(
        "b".to_string(),
        plan(&[b"/y"], Schedule::Every { secs: 90 }),
    );
    let text = format(&plans);
    assert!(text.starts_with("# rsb plans: one block per client name"));
    assert!(text.contains("\n[a]\npath /x\nwatch 10ms\n"), "{text}");
    assert!(text.contains("\n[b]\npath /y\nevery 90s\n"), "{text}");
    assert_eq!(parse(text.as_bytes()), (plans, vec![]));
}

#[test]
fn awkward_paths_are_quoted_and_read_back() {
    let odd: &[&[u8]] = &[
        b"/ lead",
        b"/trail ",
        b"/a#b",
        b"/\"q",
        b"/back\\slash",
        b"/new\nline",
        b"/\xff\xfe",
        "/é".as_bytes(),
    ];
    let p = Plan {
        paths: odd.iter().map(|p| p.to_vec()).collect(),
        excludes: vec!["# odd".into(), " x".into()],
        schedule: Schedule::Watch { delay_ms: 1500 },
        bwlimit: Some(1000),
    };
    let text = format_block("n", &p);
    assert!(text.contains("path \"/new\\x0aline\"\n"), "{text}");
    assert!(text.contains("path \"/\\xff\\xfe\"\n"), "{text}");
    assert!(text.contains("path /é\n"), "{text}");
    assert!(
        text.contains("path /back\\slash\n"),
        "bare values keep backslashes: {text}"
    );
    assert!(text.contains("watch 1500ms\n"), "{text}");
    assert!(
        !text.lines().any(|l| l.len() > 40),
        "no raw newline: {text}"
    );
    assert_eq!(parse_block(text.as_bytes()), Ok(("n".to_string(), p)));
}

#[test]
fn errors_name_their_line_and_a_bad_block_loses_only_itself() {
    let text = b"path /orphan\n\
        [good]\n\
        path /a\n\
        every 1m\n\
        [bad]\n\
        path /b\n\
        watch 1ms\n\
        [worse]\n\
        path relative\n\
        watch 1s\n\
        [no-schedule]\n\
        path /c\n\
        [x y]\n\
        [unknown]\n\
        colour blue\n\
        [good]\n\
        path /d\n\
        every 1s\n\
        [quote]\n\
        path \"/never closed\n\
        every 1s\n";
    let (plans, errors) = parse(text);
    assert_eq!(plans.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(
        plans["good"].paths,
        [b"/a".to_vec()],
        "the first of a name is kept"
    );
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 8, "{shown:#?}");
    assert_eq!(shown[0], "line 1: a line before the first [NAME]");
    assert!(
        shown[1].starts_with("line 7 (plan [bad]): watch delay '1ms' is too short"),
        "{shown:#?}"
    );
    assert_eq!(
        shown[2],
        "line 8 (plan [worse]): paths: 'relative' is not absolute"
    );
    assert_eq!(
        shown[3],
        "line 11 (plan [no-schedule]): no watch or every line"
    );
    assert!(
        shown[4].starts_with("line 13: 'x y' is not a client name"),
        "{shown:#?}"
    );
    assert!(
        shown[5].starts_with("line 15 (plan [unknown]): unknown keyword 'colour'"),
        "{shown:#?}"
    );
    assert_eq!(
        shown[6],
        "line 16 (plan [good]): a second plan of this name (the first is kept)"
    );
    assert_eq!(
        shown[7],
        "line 20 (plan [quote]): a quoted value without its closing '\"'"
    );
}

#[test]
fn a_plan_is_checked_whole() {
    let ok = plan(&[b"/a"], Schedule::Every { secs: 1 });
    assert_eq!(ok.validate(), Ok(()));
    let mut p = ok.clone();
    p.paths.clear();
    assert!(p.validate().is_err());
    let mut p = ok.clone();
    p.paths = vec![b"/a".to_vec(); MAX_PATHS + 1];
    assert!(p
        .validate()
        .unwrap_err()
        .to_string()
        .contains("at most 256"));
    let mut p = ok.clone();
    p.paths = vec![b"/a\0b".to_vec()];
    assert!(p.validate().unwrap_err().to_string().contains("NUL"));
    let mut p = ok.clone();
    p.excludes = vec!["[z-a]".into()];
    assert!(p
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("excludes: "));
    let mut p = ok.clone();
    p.schedule = Schedule::Every { secs: 0 };
    assert!(p.validate().is_err());
    let mut p = ok.clone();
    p.schedule = Schedule::Watch { delay_ms: 9 };
    assert!(p.validate().is_err());
    let mut p = ok.clone();
    p.bwlimit = Some(0);
    assert!(p.validate().is_err());
    // Too much text for one frame.
    let mut p = ok;
    p.paths = (0..200)
        .map(|i| format!("/{i:0>400}").into_bytes())
        .collect();
    assert!(p.validate().unwrap_err().to_string().starts_with("plan: "));
}

#[test]
fn the_form_round_trips_and_names_the_bad_field() {
    let p = Plan {
        paths: vec![b"/home/ann".to_vec(), b"/odd\n".to_vec()],
        excludes: vec!["*.tmp".into()],
        schedule: Schedule::Watch { delay_ms: 2000 },
        bwlimit: Some(10 << 20),
    };
    let form = to_form(&p);
    assert_eq!(form.paths, "/home/ann\n\"/odd\\x0a\"");
    assert_eq!(form.schedule, "watch");
    assert_eq!(form.interval, "2s");
    assert_eq!(form.bwlimit, "10M");
    assert_eq!(from_form(&form), Ok(p.clone()));

    let typed = PlanForm {
        paths: "/srv\r\n\r\n  \n/etc\n".into(),
        excludes: "".into(),
        schedule: "every".into(),
        interval: "15m".into(),
        bwlimit: " ".into(),
    };
    assert_eq!(
        from_form(&typed),
        Ok(Plan {
            paths: vec![b"/srv".to_vec(), b"/etc".to_vec()],
            excludes: vec![],
            schedule: Schedule::Every { secs: 900 },
            bwlimit: None,
        })
    );
    let bad = |f: &dyn Fn(&mut PlanForm)| {
        let mut form = typed.clone();
        f(&mut form);
        from_form(&form).unwrap_err().to_string()
    };
    assert_eq!(
        bad(&|f| f.paths = "home".into()),
        "paths: 'home' is not absolute"
    );
    assert_eq!(
        bad(&|f| f.paths = "".into()),
        "paths: a plan needs at least one path"
    );
    assert!(bad(&|f| f.interval = "0.5".into()).starts_with("interval: period '0.5' is too short"));
    assert!(bad(&|f| f.interval = "1.5s".into()).contains("whole number of seconds"));
    assert!(bad(&|f| f.interval = "soon".into()).starts_with("interval: bad duration"));
    assert!(bad(&|f| {
        f.schedule = "watch".into();
        f.interval = "5ms".into();
    })
    .contains("at least 10ms"));
    assert!(bad(&|f| f.schedule = "daily".into()).starts_with("schedule: "));
    assert!(bad(&|f| f.excludes = "ok\n[unclosed".into()).starts_with("excludes: "));
    assert!(bad(&|f| f.bwlimit = "10X".into()).starts_with("bwlimit: bad RATE"));
    assert!(bad(&|f| f.bwlimit = "0".into()).starts_with("bwlimit: "));
    assert!(bad(&|f| f.paths = "/a\n".repeat(MAX_PATHS + 1)).contains("more than 256 lines"));
    assert!(bad(&|f| f.paths = format!("/{}", "a".repeat(20_000))).starts_with("paths: a line of"));
}

#[test]
fn durations_and_rates_as_written() {
    assert_eq!(
        parse_schedule("watch", "0.01"),
        Ok(Schedule::Watch { delay_ms: 10 })
    );
    assert_eq!(
        parse_schedule("watch", "250ms"),
        Ok(Schedule::Watch { delay_ms: 250 })
    );
    assert_eq!(
        parse_schedule("every", "1d"),
        Ok(Schedule::Every { secs: 86_400 })
    );
    assert_eq!(
        parse_schedule("every", "0.1h"),
        Ok(Schedule::Every { secs: 360 })
    );
    assert!(parse_schedule("watch", "0ms").is_err());
    assert_eq!(format_period(7200), "2h");
    assert_eq!(format_period(61), "61s");
    assert_eq!(format_rate(500 << 10), "500K");
    assert_eq!(format_rate(1 << 30), "1G");
    assert_eq!(format_rate(1001), "1001");
}

fn arb_path() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..40).prop_map(|mut v| {
        v.insert(0, b'/');
        v
    })
}

fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        proptest::collection::vec(arb_path(), 1..5),
        proptest::collection::vec("[a-z*? #\"\\\\.é/]{1,12}", 0..4),
        prop_oneof![
            (10u64..100_000).prop_map(|delay_ms| Schedule::Watch { delay_ms }),
            (1u64..10_000_000).prop_map(|secs| Schedule::Every { secs }),
        ],
        proptest::option::of(1u64..u64::MAX / 2),
    )
        .prop_map(|(paths, excludes, schedule, bwlimit)| Plan {
            paths,
            excludes,
            schedule,
            bwlimit,
        })
        .prop_filter("valid", |p| p.validate().is_ok())
}

proptest! {
    #[test]
    fn format_then_parse_is_the_identity(
        plans in proptest::collection::btree_map("[a-z0-9._-]{1,12}", arb_plan(), 0..5)
            .prop_filter("names", |m| m.keys().all(|k| crate::proto::is_valid_client_name(k)))
    ) {
        let text = format(&plans);
        prop_assert_eq!(parse(text.as_bytes()), (plans.clone(), vec![]));
        for (name, plan) in &plans {
            let block = format_block(name, plan);
            prop_assert_eq!(parse_block(block.as_bytes()), Ok((name.clone(), plan.clone())));
            prop_assert_eq!(from_form(&to_form(plan)), Ok(plan.clone()));
        }
    }

    #[test]
    fn parse_never_panics(text in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&text);
    }
}
