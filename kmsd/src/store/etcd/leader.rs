//! One sweeper per region across instances: the instance whose lease
//! holds `P/r/R/leader/sweeper` runs deletion and automatic rotation. The
//! key is created only if absent, on the instance's lease; when the
//! instance dies its lease expires (`--etcd-lease-ttl-secs`) and the key
//! with it, and the next instance to try takes it. Two instances that
//! both believe they lead for a moment cannot commit an event twice: every
//! commit compares the region's revision, and the loser's re-plan finds
//! nothing left to do.

use super::Shared;
use crate::store::etcd_layout::Layout;
use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) fn spawn(
    rt: &tokio::runtime::Handle,
    client: Client,
    layout: Layout,
    shared: Arc<Shared>,
    ttl_secs: i64,
) -> tokio::task::JoinHandle<()> {
    rt.spawn(leader_loop(client, layout, shared, ttl_secs.max(1)))
}

async fn leader_loop(mut c: Client, layout: Layout, shared: Arc<Shared>, ttl: i64) {
    let period = Duration::from_millis((ttl as u64 * 1000 / 3).max(200));
    loop {
        let lease = match tokio::time::timeout(period, c.lease_grant(ttl, None)).await {
            Ok(Ok(l)) => l.id(),
            _ => {
                tokio::time::sleep(period).await;
                continue;
            }
        };
        shared.lease.store(lease, Ordering::Release);
        let Ok(Ok((mut keeper, mut answers))) =
            tokio::time::timeout(period, c.lease_keep_alive(lease)).await
        else {
            tokio::time::sleep(period).await;
            continue;
        };
        loop {
            if !shared.leader.load(Ordering::Acquire) {
                let key = layout.leader();
                let t = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key,
                        layout.instance(),
                        Some(PutOptions::new().with_lease(lease)),
                    )]);
                if let Ok(Ok(r)) = tokio::time::timeout(period, c.txn(t)).await
                    && r.succeeded()
                {
                    tracing::info!("this instance now runs the sweeper");
                    shared.leader.store(true, Ordering::Release);
                }
            }
            tokio::time::sleep(period).await;
            let alive = async {
                keeper.keep_alive().await?;
                answers.message().await
            };
            match tokio::time::timeout(period, alive).await {
                Ok(Ok(Some(a))) if a.ttl() > 0 => {}
                _ => {
                    if shared.leader.swap(false, Ordering::AcqRel) {
                        tracing::warn!("lost the sweeper's lease");
                    }
                    break;
                }
            }
        }
    }
}
