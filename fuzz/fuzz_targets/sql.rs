//! Query text from a client, in transaction mode: the session-effect analyser must never panic,
//! and its hot-path filter must never wave through a statement the analyser would act on.
//! The traceparent search reads the same bytes (any bytes) and must never panic either.
#![no_main]

use dbwarden_proxy::sql::{analyze_with, may_touch_session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = dbwarden_proxy::trace::parent::find(data) {
        assert!(p.trace_id != 0 && p.span_id != 0, "{p:?}");
    }
    // Query strings reach the analyser as UTF-8 (the proxy only speaks UTF-8 to clients).
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let touches = may_touch_session(sql);
    for standard_conforming_strings in [true, false] {
        let effects = analyze_with(sql, standard_conforming_strings);
        assert!(
            touches || effects.is_empty(),
            "filter said no to {sql:?} but the analyser found {effects:?}"
        );
    }
});
