use super::*;

fn store() -> (tempfile::TempDir, LocalFolderStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path());
    (dir, store)
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let (_dir, s) = store();
    let etag = s
        .put(
            "docs",
            "a/b.txt",
            Bytes::from_static(b"hello"),
            "text/plain",
        )
        .await
        .unwrap();
    s.put("docs", "a/c.txt", Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    s.put("docs", "z.txt", Bytes::from_static(b""), "text/plain")
        .await
        .unwrap();
    let blob = s.get("docs", "a/b.txt").await.unwrap();
    assert_eq!(&blob.data[..], b"hello");
    assert_eq!(blob.properties.etag, etag);
    assert_eq!(blob.properties.content_type, "text/plain");
    let names: Vec<String> = s
        .list("docs", "a/")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["a/b.txt", "a/c.txt"]);
    assert_eq!(s.get("docs", "z.txt").await.unwrap().data.len(), 0);
    s.delete("docs", "a/b.txt").await.unwrap();
    assert!(matches!(
        s.get("docs", "a/b.txt").await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete("docs", "a/b.txt").await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(s.properties("docs", "a/b.txt").await.unwrap().is_none());
    assert!(s.list("empty", "").await.unwrap().is_empty());
}

#[tokio::test]
async fn create_if_absent_refuses_an_existing_blob() {
    let (_dir, s) = store();
    s.create_if_absent("docs", "x", Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    let again = s
        .create_if_absent("docs", "x", Bytes::from_static(b"2"), "text/plain")
        .await;
    assert!(matches!(again, Err(BlobError::AlreadyExists { .. })));
    assert_eq!(&s.get("docs", "x").await.unwrap().data[..], b"1");
}

#[tokio::test]
async fn put_if_match_detects_a_concurrent_change() {
    let (_dir, s) = store();
    let v1 = s
        .put("docs", "x", Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    let v2 = s
        .put_if_match("docs", "x", Bytes::from_static(b"2"), "text/plain", &v1)
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let stale = s
        .put_if_match("docs", "x", Bytes::from_static(b"3"), "text/plain", &v1)
        .await;
    assert!(matches!(stale, Err(BlobError::ConditionNotMet { .. })));
    // Same bytes again still give a new tag: no ABA.
    let v3 = s
        .put("docs", "x", Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    assert_ne!(v3, v1);
    let gone = s
        .put_if_match("docs", "missing", Bytes::new(), "text/plain", &v1)
        .await;
    assert!(matches!(gone, Err(BlobError::NotFound { .. })));
}

#[tokio::test]
async fn concurrent_create_if_absent_has_exactly_one_winner() {
    let (_dir, s) = store();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create_if_absent("docs", "once", Bytes::from(format!("{i}")), "text/plain")
                .await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => winners += 1,
            Err(BlobError::AlreadyExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn concurrent_read_modify_write_loses_no_update() {
    let (_dir, s) = store();
    s.put("docs", "counter", Bytes::from_static(b"0"), "text/plain")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let blob = s.get("docs", "counter").await.unwrap();
                    let n: u32 = std::str::from_utf8(&blob.data).unwrap().parse().unwrap();
                    let next = Bytes::from((n + 1).to_string());
                    match s
                        .put_if_match("docs", "counter", next, "text/plain", &blob.properties.etag)
                        .await
                    {
                        Ok(_) => break,
                        Err(BlobError::ConditionNotMet { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(&s.get("docs", "counter").await.unwrap().data[..], b"80");
}

#[tokio::test]
async fn a_blob_and_a_folder_of_the_same_name_conflict_clearly() {
    let (_dir, s) = store();
    s.put("docs", "a", Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    let err = s
        .put("docs", "a/b", Bytes::from_static(b"2"), "text/plain")
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::InvalidName { .. }), "{err}");
}

#[tokio::test]
async fn no_temporary_files_are_left_behind() {
    let (dir, s) = store();
    for i in 0..5 {
        s.put("docs", "x", Bytes::from(i.to_string()), "text/plain")
            .await
            .unwrap();
    }
    assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    assert_eq!(s.list("docs", "").await.unwrap().len(), 1);
}
