//! Daemons against a real PostgreSQL: replicated on every node, leader-elected on exactly
//! one and moved on failover, restarted with backoff after errors, panics and early returns.

use crate::common;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, next_leader, node};
use forge::registry::{DaemonDef, DaemonMode};
use forge::testing::TestDatabase;
use forge::{DaemonContext, Registry, Running};
use uuid::Uuid;

fn daemon(name: &'static str, mode: DaemonMode, restart_ms: u64) -> DaemonDef {
    DaemonDef {
        name,
        module: "app::daemons",
        mode,
        restart_ms,
    }
}

/// Instances of the singleton running right now across every node, and the most ever seen.
#[derive(Default)]
struct Census {
    now: AtomicI64,
    max: AtomicI64,
}

/// Counts an instance for as long as it lives, however it ends (returned or aborted).
struct Alive(Arc<Census>);

impl Alive {
    fn new(census: &Arc<Census>) -> Alive {
        let now = census.now.fetch_add(1, Ordering::SeqCst) + 1;
        census.max.fetch_max(now, Ordering::SeqCst);
        Alive(census.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn register(registry: &mut Registry, census: Arc<Census>) {
    registry.daemon(
        daemon("everywhere", DaemonMode::Replicated, 100),
        |ctx: DaemonContext| async move {
            ctx.shutdown().await;
            Ok(())
        },
    );
    registry.daemon(
        daemon("singleton", DaemonMode::LeaderElected, 100),
        move |ctx: DaemonContext| {
            let alive = Alive::new(&census);
            async move {
                ctx.shutdown().await;
                drop(alive);
                Ok(())
            }
        },
    );
}

async fn running_on(db: &TestDatabase, name: &str, alive: &[&Running]) -> Vec<Uuid> {
    let ids: Vec<Uuid> = alive.iter().map(|n| n.node_id()).collect();
    sqlx::query_scalar(
        "SELECT node_id FROM forge_daemons WHERE name = $1 AND status = 'running' \
         AND node_id = ANY($2) ORDER BY node_id",
    )
    .bind(name)
    .bind(&ids)
    .fetch_all(db.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicated_runs_everywhere_and_leader_elected_on_the_leader_only() {
    let db = TestDatabase::new().await;
    let census = Arc::new(Census::default());
    let a = node(db.url(), |r| register(r, census.clone())).await;
    let b = node(db.url(), |r| register(r, census.clone())).await;
    let (leader, _) = next_leader(db.pool(), None, Duration::from_secs(5)).await;
    let mut both = [a.node_id(), b.node_id()];
    both.sort();
    eventually(Duration::from_secs(3), "daemons started", || async {
        let everywhere = running_on(&db, "everywhere", &[&a, &b]).await;
        let singleton = running_on(&db, "singleton", &[&a, &b]).await;
        (everywhere == both && singleton == [leader]).then_some(())
    })
    .await;
    assert_eq!(census.now.load(Ordering::SeqCst), 1);

    // The leader dies: the singleton moves to the other node, never running twice.
    let (dead, survivor) = if a.node_id() == leader {
        (a, b)
    } else {
        (b, a)
    };
    let started = Instant::now();
    dead.kill().await;
    let (new_leader, _) = next_leader(db.pool(), Some(leader), Duration::from_secs(5)).await;
    assert_eq!(new_leader, survivor.node_id());
    eventually(Duration::from_secs(3), "the singleton moved", || async {
        (running_on(&db, "singleton", &[&survivor]).await == [new_leader]
            && census.now.load(Ordering::SeqCst) == 1)
            .then_some(())
    })
    .await;
    println!("leader-elected daemon moved in {:?}", started.elapsed());

    // A graceful shutdown resolves ctx.shutdown() and the daemons return.
    survivor.shutdown().await.unwrap();
    assert_eq!(census.now.load(Ordering::SeqCst), 0);
    assert_eq!(
        census.max.load(Ordering::SeqCst),
        1,
        "never two singletons at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_daemons_are_restarted_with_backoff() {
    let db = TestDatabase::new().await;
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = starts.clone();
    let n = node(db.url(), move |registry| {
        registry.daemon(
            daemon("flaky", DaemonMode::Replicated, 100),
            move |ctx: DaemonContext| {
                let attempt = {
                    let mut starts = seen.lock().unwrap();
                    starts.push(Instant::now());
                    starts.len()
                };
                async move {
                    match attempt {
                        1 => Err(forge::Error::Internal("no connection to the broker".into())),
                        2 => panic!("unexpected message"),
                        // Returning while the node is not stopping counts as a failure too.
                        3 => Ok(()),
                        _ => {
                            ctx.shutdown().await;
                            Ok(())
                        }
                    }
                }
            },
        );
    })
    .await;
    let row = || {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT status, last_error FROM forge_daemons WHERE name = 'flaky' AND node_id = $1",
        )
        .bind(n.node_id())
        .fetch_optional(db.pool())
    };
    // Backoff 100ms, 200ms, 400ms: the fourth instance starts after about 700ms.
    let statuses = Arc::new(AtomicUsize::new(0));
    eventually(Duration::from_secs(5), "the fourth start", || async {
        if let Some((status, _)) = row().await.unwrap() {
            if status == "restarting" {
                statuses.fetch_add(1, Ordering::SeqCst);
            }
        }
        (starts.lock().unwrap().len() == 4).then_some(())
    })
    .await;
    let (status, last_error) = eventually(Duration::from_secs(2), "running again", || async {
        row()
            .await
            .unwrap()
            .filter(|(status, _)| status == "running")
    })
    .await;
    assert_eq!(status, "running");
    // The error that caused the latest restart stays visible.
    assert_eq!(
        last_error.as_deref(),
        Some("returned before shutdown() resolved")
    );
    assert!(
        statuses.load(Ordering::SeqCst) > 0,
        "`restarting` was visible"
    );
    let starts = starts.lock().unwrap().clone();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, at_least) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap >= Duration::from_millis(at_least), "{gaps:?}");
        // Generous: a panic's backtrace alone can take a few hundred milliseconds to print
        // in a debug build on a busy machine.
        assert!(*gap < Duration::from_millis(at_least + 2000), "{gaps:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        row().await.unwrap().unwrap().0,
        "running",
        "no further restarts"
    );
    n.shutdown().await.unwrap();
}
