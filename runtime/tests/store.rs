//! The store's contract, case by case on both backends: the embedded SQLite file and a real
//! PostgreSQL server (`common::postgres`). A backend is only a backend if every case here
//! gives the same answer on it.

mod common;

use common::postgres::Pg;
use sandgate::store::postgres::Postgres;
use sandgate::store::sqlite::Sqlite;
use sandgate::store::{Change, Doc, KvUsage, Store, StoreError, User};
use serde_json::json;

fn user(kuid: &str, profiles: &[&str]) -> User {
    User { kuid: kuid.into(), content: json!({ "profileIds": profiles }).as_object().unwrap().clone() }
}

fn put(strategy: &str, key: &str, value: &str) -> Change {
    Change::KvPut { strategy: strategy.into(), key: key.into(), value: value.into(), expires_ms: None, insert: false }
}

/// Runs `case` on a fresh SQLite file and on a fresh PostgreSQL database.
fn on_both(case: fn(&dyn Store)) {
    let dir = tempfile::tempdir().unwrap();
    case(&Sqlite::open(dir.path()).unwrap());
    let pg = Pg::start();
    case(&Postgres::open(&pg.url(), "test").unwrap());
}

#[test]
fn a_failed_batch_leaves_nothing() {
    on_both(|db| {
        db.commit(&[Change::InsertUser { user: user("a", &["default"]), first_admin: false }]).unwrap();
        let err = db
            .commit(&[
                put("local", "user:x", "{}"),
                Change::Link { strategy: "local".into(), kuid: "a".into() },
                Change::InsertUser { user: user("a", &["default"]), first_admin: false },
            ])
            .unwrap_err();
        assert!(matches!(err, StoreError::UserExists(ref k) if k == "a"), "{err}");
        assert_eq!(db.kv_get("local", "user:x").unwrap(), None);
        assert!(!db.is_linked("local", "a").unwrap());
    });
}

#[test]
fn a_group_commits_each_batch_or_none_of_it() {
    on_both(|db| {
        let ok: &[Change] = &[put("s", "one", "1")];
        let failing: &[Change] = &[
            put("s", "two", "2"),
            Change::InsertUser { user: user("b", &[]), first_admin: false },
            Change::InsertUser { user: user("b", &[]), first_admin: false },
        ];
        let also_ok: &[Change] = &[put("s", "three", "3")];
        let outcomes = db.commit_group(&[ok, failing, also_ok]);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(matches!(outcomes[1], Err(StoreError::UserExists(_))), "{outcomes:?}");
        assert_eq!(db.kv_list("s", "", 10).unwrap(), vec!["one", "three"]);
        assert!(db.get_user("b").unwrap().is_none());
    });
}

#[test]
fn storage_is_namespaced_listed_by_prefix_and_counted() {
    on_both(|db| {
        db.commit(&[put("a", "user:1", "v"), put("a", "user:2", "v"), put("a", "other", "v"), put("b", "user:3", "v")])
            .unwrap();
        assert_eq!(db.kv_list("a", "user:", 10).unwrap(), vec!["user:1", "user:2"]);
        assert_eq!(db.kv_list("a", "user:", 1).unwrap(), vec!["user:1"]);
        assert_eq!(db.kv_list("a", "\u{10FFFF}", 10).unwrap(), Vec::<String>::new());
        assert_eq!(db.kv_get("b", "user:1").unwrap(), None);
        assert_eq!(db.kv_usage("a").unwrap(), KvUsage { keys: 3, bytes: 6 + 6 + 5 + 3 });
        // Kept up to date on an overwrite, a delete, and a failed batch (rolled back).
        db.commit(&[put("a", "other", "vvvv")]).unwrap();
        db.commit(&[Change::KvDelete { strategy: "a".into(), key: "user:1".into() }]).unwrap();
        assert_eq!(db.kv_usage("a").unwrap(), KvUsage { keys: 2, bytes: (6 + 1) + (5 + 4) });
        let _ = db.commit(&[put("a", "new", "v"), Change::InsertUser { user: user("u", &[]), first_admin: false }]);
        let _ = db.commit(&[put("a", "new2", "v"), Change::InsertUser { user: user("u", &[]), first_admin: false }]);
        assert_eq!(db.kv_usage("a").unwrap().keys, 3, "the second batch failed and left no count behind");
        assert_eq!(db.kv_usage("nobody").unwrap(), KvUsage::default());
    });
}

#[test]
fn expired_values_are_gone_and_swept() {
    on_both(|db| {
        let at = |key: &str, expires_ms| Change::KvPut {
            strategy: "s".into(),
            key: key.into(),
            value: "v".into(),
            expires_ms: Some(expires_ms),
            insert: false,
        };
        db.commit(&[at("old", 1_000), at("new", i64::MAX / 2)]).unwrap();
        assert!(db.kv_entry("s", "old", 2_000).unwrap().is_none(), "expired: not read");
        assert!(db.kv_entry("s", "new", 2_000).unwrap().is_some());
        db.commit(&[Change::KvSweep { now_ms: 2_000 }]).unwrap();
        assert_eq!(db.kv_usage("s").unwrap().keys, 1, "the sweep gave the room back");
    });
}

#[test]
fn the_first_admin_is_created_only_once_even_after_every_admin_is_gone() {
    on_both(|db| {
        db.commit(&[Change::InsertUser { user: user("a", &["admin"]), first_admin: true }]).unwrap();
        let err = db.commit(&[Change::InsertUser { user: user("b", &["admin"]), first_admin: true }]).unwrap_err();
        assert!(matches!(err, StoreError::AdminExists), "{err}");
        assert!(db.admin_exists().unwrap());
        // The admin demoted, then deleted: createFirstAdmin stays closed for good.
        db.commit(&[Change::UpdateUser(user("a", &["default"]))]).unwrap();
        assert!(db.admin_exists().unwrap(), "demoted");
        db.commit(&[Change::DeleteUser("a".into())]).unwrap();
        assert!(db.admin_exists().unwrap(), "deleted");
        let err = db.commit(&[Change::InsertUser { user: user("c", &["admin"]), first_admin: true }]).unwrap_err();
        assert!(matches!(err, StoreError::AdminExists), "{err}");
    });
}

#[test]
fn revocations_only_ever_tighten_and_a_token_is_refreshed_once() {
    on_both(|db| {
        let revoke = |jti: &str, void_from_ms, refresh| Change::RevokeToken {
            jti: jti.into(),
            void_from_ms,
            expires_ms: Some(i64::MAX / 2),
            refresh,
        };
        let cutoff = |ms| Change::RevokeUser { kuid: "u".into(), cutoff_ms: ms, api_keys: false };
        let deleted = |kuid: &str, ms| Change::RevokeUser { kuid: kuid.into(), cutoff_ms: ms, api_keys: true };
        db.commit(&[revoke("t1", 500, false), revoke("t1", 900, false), cutoff(300), cutoff(200)]).unwrap();
        // A deletion's cut-off (API keys too) stays when a later one is sessions only.
        db.commit(&[deleted("d", 400), Change::RevokeUser { kuid: "d".into(), cutoff_ms: 600, api_keys: false }])
            .unwrap();
        db.commit(&[revoke("t2", 700, true)]).unwrap();
        assert!(matches!(db.commit(&[revoke("t2", 800, true)]), Err(StoreError::Refreshed)));
        assert!(matches!(db.commit(&[revoke("t1", 800, true)]), Err(StoreError::Refreshed)), "revoked already");
        let mut saved = db.revocations(0).unwrap();
        saved.tokens.sort();
        assert_eq!(saved.tokens, vec![("t1".into(), 500, Some(i64::MAX / 2)), ("t2".into(), 700, Some(i64::MAX / 2))]);
        saved.users.sort();
        assert_eq!(saved.users, vec![("d".into(), 600, Some(400)), ("u".into(), 300, None)]);
    });
}

#[test]
fn an_insert_fails_if_the_key_was_stored_meanwhile() {
    on_both(|db| {
        let insert = |key: &str, value: &str, expires_ms: Option<i64>| Change::KvPut {
            strategy: "s".into(),
            key: key.into(),
            value: value.into(),
            expires_ms,
            insert: true,
        };
        db.commit(&[insert("user:bob", "first", None)]).unwrap();
        let err = db.commit(&[insert("user:bob", "second", None), put("s", "other", "x")]).unwrap_err();
        assert!(matches!(err, StoreError::Taken { ref key, .. } if key == "user:bob"), "{err}");
        assert_eq!(db.kv_get("s", "user:bob").unwrap().as_deref(), Some("first"));
        assert_eq!(db.kv_get("s", "other").unwrap(), None, "the whole batch failed");
        // Over an expired value (it reads as absent), an insert goes through.
        db.commit(&[insert("state", "old", Some(1_000))]).unwrap();
        db.commit(&[insert("state", "new", None)]).unwrap();
        assert_eq!(db.kv_get("s", "state").unwrap().as_deref(), Some("new"));
        // A plain put overwrites whatever is there.
        db.commit(&[put("s", "user:bob", "third")]).unwrap();
        assert_eq!(db.kv_get("s", "user:bob").unwrap().as_deref(), Some("third"));
    });
}

#[test]
fn security_documents_by_kind_inserted_once_and_users_paged_in_byte_order() {
    on_both(|db| {
        let doc = |kind, id: &str, body: &str, insert| Change::PutDoc {
            kind,
            id: id.into(),
            body: body.into(),
            owner: None,
            insert,
        };
        db.commit(&[doc(Doc::Role, "r", "{\"a\":1}", true), doc(Doc::Profile, "r", "{\"b\":2}", true)]).unwrap();
        let err = db.commit(&[doc(Doc::Role, "r", "{}", true)]).unwrap_err();
        assert!(matches!(err, StoreError::DocExists { ref kind, ref id } if kind == "role" && id == "r"), "{err}");
        db.commit(&[doc(Doc::Role, "r", "{\"a\":3}", false), doc(Doc::Role, "Z", "{}", true)]).unwrap();
        assert_eq!(db.docs(Doc::Role).unwrap(), vec![("Z".into(), "{}".into()), ("r".into(), "{\"a\":3}".into())]);
        assert_eq!(db.docs(Doc::Profile).unwrap(), vec![("r".into(), "{\"b\":2}".into())], "kinds apart");
        assert!(db.docs(Doc::ApiKey).unwrap().is_empty());
        // Listed by owner (an API key's user), and only theirs.
        let key = |id: &str, owner: &str| Change::PutDoc {
            kind: Doc::ApiKey,
            id: id.into(),
            body: "{}".into(),
            owner: Some(owner.into()),
            insert: true,
        };
        db.commit(&[key("k2", "alice"), key("k1", "alice"), key("k3", "bob")]).unwrap();
        let ids =
            |owner| db.docs_of(Doc::ApiKey, owner).unwrap().into_iter().map(|(id, _)| id).collect::<Vec<String>>();
        assert_eq!(ids("alice"), vec!["k1", "k2"]);
        assert_eq!(ids("bob"), vec!["k3"]);
        assert!(ids("carol").is_empty());
        assert!(db.docs_of(Doc::Role, "alice").unwrap().is_empty(), "kinds apart");
        db.commit(&[Change::DeleteDoc { kind: Doc::Role, id: "r".into() }]).unwrap();
        assert_eq!(db.docs(Doc::Role).unwrap().len(), 1);
        assert_eq!(db.docs(Doc::Profile).unwrap().len(), 1);
        // Users, a page at a time, in byte order whatever the database's locale.
        let kuids = ["b", "a", "B", "é", "a-1"];
        let inserts: Vec<Change> =
            kuids.iter().map(|k| Change::InsertUser { user: user(k, &["default"]), first_admin: false }).collect();
        db.commit(&inserts).unwrap();
        let page = |after: &str| db.users_after(after, 2).unwrap().into_iter().map(|u| u.kuid).collect::<Vec<_>>();
        assert_eq!(page(""), vec!["B", "a"]);
        assert_eq!(page("a"), vec!["a-1", "b"]);
        assert_eq!(page("b"), vec!["é"]);
        assert!(page("é").is_empty());
    });
}
