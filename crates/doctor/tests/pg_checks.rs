//! The PostgreSQL checklist against a real cluster seeded with each problem, and
//! against a clean one.

mod common;

use std::time::Duration;

use common::{assert_finding, cluster, diagnose, options};
use dbwarden_doctor::Severity;
use dbwarden_testkit::pg::{HbaAuth, PgOptions};

/// The ids the seeded problems map to; the clean case must pass all of them.
const SEEDED: &[&str] = &[
    "pg.idle_in_transaction",
    "pg.prepared_xacts",
    "pg.jsonb_precision",
    "pg.sequence_exhaustion",
    "pg.sequence_cache",
    "pg.timeouts_unset",
    "pg.timestamp_without_tz",
];

/// A monitoring role as the docs recommend: pg_monitor plus read access.
const GRANTS: &str = "GRANT pg_monitor, pg_read_all_data TO app;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_problems_are_reported_with_id_and_severity() {
    let pg = cluster(PgOptions {
        auth: HbaAuth::Scram,
        users: vec![("app".into(), "s3cret".into())],
        settings: vec![("max_prepared_transactions".into(), "5".into())],
        ..PgOptions::default()
    })
    .await;
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        &format!(
            "{GRANTS}
             CREATE TABLE events (id int4, at timestamp, doc jsonb);
             CREATE SEQUENCE events_id_seq AS bigint OWNED BY events.id;
             ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq');
             SELECT setval('events_id_seq', 2061584302);
             CREATE SEQUENCE gappy_seq CACHE 50;
             INSERT INTO events (at, doc) VALUES (now(), '{{\"amount\": 1, \"id\": 1152921504606846976}}');
             BEGIN; INSERT INTO events (doc) VALUES ('{{}}'); PREPARE TRANSACTION 'stale-2pc';"
        ),
    )
    .unwrap();

    // An application session that opened a transaction and walked away.
    let (client, conn) = tokio_postgres::connect(
        &format!("{}?sslmode=disable", pg.url("app", "s3cret", "shop")),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    client
        .batch_execute("BEGIN; SELECT count(*) FROM events")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let opts = options(&[
        ("pg.idle_in_transaction.warn_s", 1.0),
        ("pg.prepared_xacts.warn_s", 1.0),
    ]);
    let report = diagnose(&pg.url("app", "s3cret", "shop"), &opts).await;

    assert_finding(&report, "pg.idle_in_transaction", Severity::Warning);
    assert_finding(&report, "pg.prepared_xacts", Severity::Warning);
    assert_finding(&report, "pg.jsonb_precision", Severity::Warning);
    assert_finding(&report, "pg.sequence_exhaustion", Severity::Critical);
    assert_finding(&report, "pg.sequence_cache", Severity::Info);
    assert_finding(&report, "pg.timeouts_unset", Severity::Warning);
    assert_finding(&report, "pg.timestamp_without_tz", Severity::Info);

    // The evidence names the offender, not just a count.
    let seq = report.finding("pg.sequence_exhaustion").unwrap();
    assert!(
        seq.evidence
            .items
            .iter()
            .any(|i| i.contains("public.events.id (integer)") && i.contains("96.0%")),
        "{:?}",
        seq.evidence.items
    );
    let json = report.finding("pg.jsonb_precision").unwrap();
    assert!(
        json.evidence
            .items
            .iter()
            .any(|i| i.contains("public.events.doc")),
        "{:?}",
        json.evidence.items
    );
    let px = report.finding("pg.prepared_xacts").unwrap();
    assert!(
        px.evidence.items.iter().any(|i| i.contains("stale-2pc")),
        "{:?}",
        px.evidence.items
    );
    let ts = report.finding("pg.timestamp_without_tz").unwrap();
    assert_eq!(ts.evidence.items, vec!["public.events.at".to_string()]);
    let cache = report.finding("pg.sequence_cache").unwrap();
    assert!(cache
        .evidence
        .items
        .iter()
        .any(|i| i.contains("gappy_seq CACHE 50")));
    assert!(report
        .finding("pg.timeouts_unset")
        .unwrap()
        .title
        .contains("statement_timeout"));
    // Every finding carries its runbook.
    assert!(report
        .findings
        .iter()
        .all(|f| !f.runbook.fix.is_empty() && !f.runbook.verify.is_empty()));
    assert_eq!(report.summary.exit_code, 2);
    // The probe reports the method the server actually used.
    assert_eq!(
        report.phase("auth").unwrap().attrs["method"],
        "scram-sha-256"
    );

    client.batch_execute("ROLLBACK").await.unwrap();
    drop(client);
    let _ = conn.await;
    pg.psql("shop", "ROLLBACK PREPARED 'stale-2pc'").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_database_reports_none_of_the_seeded_problems() {
    let pg = cluster(PgOptions {
        auth: HbaAuth::Scram,
        users: vec![("app".into(), "s3cret".into())],
        settings: vec![
            ("statement_timeout".into(), "30s".into()),
            ("idle_in_transaction_session_timeout".into(), "60s".into()),
            ("lock_timeout".into(), "5s".into()),
            ("max_prepared_transactions".into(), "5".into()),
        ],
        ..PgOptions::default()
    })
    .await;
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        &format!(
            "{GRANTS}
             CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz, doc jsonb);
             INSERT INTO orders (at, doc) SELECT now(), jsonb_build_object('n', g, 'big', 9007199254740991) FROM generate_series(1, 50) g;"
        ),
    )
    .unwrap();
    let opts = options(&[]);
    let report = diagnose(&pg.url("app", "s3cret", "shop"), &opts).await;
    for id in SEEDED {
        assert_finding(&report, id, Severity::Ok);
    }
    assert!(report.finding("pg.connections").is_some());
}
