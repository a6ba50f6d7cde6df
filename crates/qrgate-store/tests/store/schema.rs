//! SQLite's and PostgreSQL's schemas match.

use super::*;

// ---------- schema parity ----------

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = open_sqlite().await;
    let Some(pg) = open_pg().await else { return };
    let Where::Sqlite(path) = &sqlite.at else {
        unreachable!()
    };
    let Where::Postgres { url, schema } = &pg.at else {
        unreachable!()
    };

    let norm = |t: &str| match t.to_ascii_lowercase().as_str() {
        "bigint" | "integer" | "int8" | "int4" => "integer".to_string(),
        "text" => "text".to_string(),
        "boolean" | "bool" => "boolean".to_string(),
        "blob" | "bytea" => "bytes".to_string(),
        other => other.to_string(),
    };
    type Schema = (
        BTreeSet<(String, String, String, bool)>,
        BTreeSet<(String, bool, String)>,
        BTreeSet<String>,
        BTreeSet<String>,
    );

    let c = rusqlite::Connection::open(path).unwrap();
    let strings = |sql: &str, arg: &str| -> Vec<String> {
        let mut st = c.prepare(sql).unwrap();
        st.query_map([arg], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut lite: Schema = Default::default();
    let tables = strings(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND ?1 = ?1",
        "",
    );
    for tname in &tables {
        let mut st = c
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
            .unwrap();
        let cols = st
            .query_map([tname], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap);
        for (name, ty, notnull, pk) in cols {
            lite.0
                .insert((tname.clone(), name, norm(&ty), notnull == 1 || pk > 0));
        }
        let mut st = c
            .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
            .unwrap();
        let indexes: Vec<(String, i64, String)> = st
            .query_map([tname], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (iname, unique, origin) in indexes {
            let cols = strings(
                "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
                &iname,
            );
            lite.1.insert((tname.clone(), unique == 1, cols.join(",")));
            if origin == "c" {
                lite.2.insert(iname);
            }
        }
        // A rowid primary key has no index entry: count it as a unique index.
        let pk = strings(
            "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
            tname,
        );
        if !pk.is_empty() {
            lite.1.insert((tname.clone(), true, pk.join(",")));
        }
    }
    for n in strings(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND ?1 = ?1",
        "",
    ) {
        lite.3.insert(n);
    }

    let mut p = sqlx::PgConnection::connect(url).await.unwrap();
    let mut post: Schema = Default::default();
    for r in sqlx::query("SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns WHERE table_schema = $1").bind(schema).fetch_all(&mut p).await.unwrap() {
        post.0.insert((r.get(0), r.get(1), norm(&r.get::<String, _>(2)), r.get::<String, _>(3) == "NO"));
    }
    for r in sqlx::query(
        "SELECT t.relname::text, i.relname::text, ix.indisunique, ix.indisprimary, \
         array_to_string(ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n) \
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n), ',') \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace WHERE ns.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut p)
    .await
    .unwrap()
    {
        let (tname, iname, unique, primary): (String, String, bool, bool) = (r.get(0), r.get(1), r.get(2), r.get(3));
        post.1.insert((tname.clone(), unique, r.get(4)));
        let constraint_made = primary || iname.ends_with("_key");
        if !constraint_made {
            post.2.insert(iname);
        }
    }
    for n in sqlx::query_scalar::<_, String>("SELECT DISTINCT trigger_name::text FROM information_schema.triggers WHERE trigger_schema = $1").bind(schema).fetch_all(&mut p).await.unwrap() {
        post.3.insert(n);
    }
    assert_eq!(
        lite.0, post.0,
        "tables, columns, types or nullability differ"
    );
    assert_eq!(lite.1, post.1, "unique constraints or indexes differ");
    assert_eq!(lite.2, post.2, "named indexes differ");
    assert_eq!(lite.3, post.3, "triggers differ");
    assert!(lite.0.len() > 50);
    pg.drop_schema().await;
}
