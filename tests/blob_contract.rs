//! One contract for every `BlobStore`: the local folder store and Azure Blob Storage on
//! Azurite (installed by `scripts/install-azurite.sh`, started here on a free port).

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::azurite::Azurite;
use docflow::blob::connection::BlobConnection;
use docflow::blob::{AzureBlobStore, BlobError, BlobStore, LocalFolderStore};

const C: &str = "contract";

async fn contract(store: Arc<dyn BlobStore>) {
    // Missing blobs.
    assert!(matches!(
        store.get(C, "missing").await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(store.properties(C, "missing").await.unwrap().is_none());
    assert!(matches!(
        store.delete(C, "missing").await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(
        store.list(C, "").await.unwrap().is_empty(),
        "a container not yet created lists empty"
    );

    // Round trip, properties, overwrite.
    let etag = store
        .put(
            C,
            "docs/a.json",
            Bytes::from_static(b"{\"a\":1}"),
            "application/json",
        )
        .await
        .unwrap();
    let blob = store.get(C, "docs/a.json").await.unwrap();
    assert_eq!(&blob.data[..], b"{\"a\":1}");
    assert_eq!(blob.properties.content_type, "application/json");
    assert_eq!(blob.properties.etag, etag);
    assert_eq!(blob.properties.size, 7);
    let props = store.properties(C, "docs/a.json").await.unwrap().unwrap();
    assert_eq!((props.size, props.etag.clone()), (7, etag.clone()));
    let newer = store
        .put(
            C,
            "docs/a.json",
            Bytes::from_static(b"{}"),
            "application/json",
        )
        .await
        .unwrap();
    assert_ne!(newer, etag, "every write changes the ETag");

    // Create-if-absent.
    store
        .create_if_absent(C, "once", Bytes::from_static(b"first"), "text/plain")
        .await
        .unwrap();
    let again = store
        .create_if_absent(C, "once", Bytes::from_static(b"second"), "text/plain")
        .await;
    assert!(
        matches!(again, Err(BlobError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(&store.get(C, "once").await.unwrap().data[..], b"first");

    // Put-if-match.
    let current = store.properties(C, "once").await.unwrap().unwrap().etag;
    let updated = store
        .put_if_match(
            C,
            "once",
            Bytes::from_static(b"third"),
            "text/plain",
            &current,
        )
        .await
        .unwrap();
    let stale = store
        .put_if_match(
            C,
            "once",
            Bytes::from_static(b"fourth"),
            "text/plain",
            &current,
        )
        .await;
    assert!(
        matches!(stale, Err(BlobError::ConditionNotMet { .. })),
        "{stale:?}"
    );
    let gone = store
        .put_if_match(C, "never", Bytes::from_static(b"x"), "text/plain", &updated)
        .await;
    assert!(
        matches!(
            gone,
            Err(BlobError::NotFound { .. } | BlobError::ConditionNotMet { .. })
        ),
        "{gone:?}"
    );
    assert!(
        store.properties(C, "never").await.unwrap().is_none(),
        "a failed put-if-match writes nothing"
    );

    // Races: exactly one winner.
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .create_if_absent(
                    C,
                    "race/create",
                    Bytes::from(format!("racer {i}")),
                    "text/plain",
                )
                .await
                .is_ok()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "one create-if-absent wins");
    let base = store
        .properties(C, "race/create")
        .await
        .unwrap()
        .unwrap()
        .etag;
    let mut racers = Vec::new();
    for i in 0..8 {
        let (store, base) = (store.clone(), base.clone());
        racers.push(tokio::spawn(async move {
            store
                .put_if_match(
                    C,
                    "race/create",
                    Bytes::from(format!("update {i}")),
                    "text/plain",
                    &base,
                )
                .await
                .is_ok()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "one put-if-match wins");

    // Names with spaces and unicode; empty blobs.
    for name in [
        "with space/file name.txt",
        "ünïcödé/日本語.txt",
        "percent%25/a+b.txt",
    ] {
        store
            .put(C, name, Bytes::from(name.as_bytes().to_vec()), "text/plain")
            .await
            .unwrap();
        assert_eq!(
            &store.get(C, name).await.unwrap().data[..],
            name.as_bytes(),
            "{name}"
        );
    }
    store
        .put(C, "empty", Bytes::new(), "text/plain")
        .await
        .unwrap();
    let empty = store.get(C, "empty").await.unwrap();
    assert!(empty.data.is_empty());
    assert_eq!(empty.properties.size, 0);

    // Listing: prefix, order, more than one page.
    for i in 0..7 {
        store
            .put(
                C,
                &format!("page/{i:02}"),
                Bytes::from_static(b"x"),
                "text/plain",
            )
            .await
            .unwrap();
    }
    let listed: Vec<String> = store
        .list(C, "page/")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        listed,
        (0..7).map(|i| format!("page/{i:02}")).collect::<Vec<_>>()
    );
    assert!(store.list(C, "").await.unwrap().len() >= 13);
    assert!(store.list(C, "page/99").await.unwrap().is_empty());

    // Delete.
    store.delete(C, "page/00").await.unwrap();
    assert!(matches!(
        store.get(C, "page/00").await,
        Err(BlobError::NotFound { .. })
    ));

    // Names Azure refuses are refused everywhere.
    assert!(matches!(
        store
            .put("Bad_Container", "x", Bytes::new(), "text/plain")
            .await,
        Err(BlobError::InvalidName { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_folder_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(Arc::new(LocalFolderStore::new(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_storage_on_azurite_keeps_the_contract() {
    let azurite = Azurite::start();
    let connection = BlobConnection::from_connection_string(&azurite.connection_string()).unwrap();
    let store = AzureBlobStore::new(&connection, None)
        .unwrap()
        .with_list_page_size(3);
    contract(Arc::new(store)).await;
}
