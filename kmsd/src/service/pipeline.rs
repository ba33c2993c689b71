//! The one request path. Every operation, from the socket or from kmsd
//! itself, goes through it in one order, under one guard (the state's read
//! lock for reads; the writer lock for mutations, held from resolution to
//! commit):
//!
//! 0. **validate** the request alone, before any lock
//!    ([`Operation::validate`]);
//! 1. **resolve** every key reference once ([`Operation::refs`]);
//! 2. **authorize** the resolved ids ([`Operation::CHECKS`]);
//! 3. **execute** on those ids ([`Operation::execute`]);
//! 4. **audit** with those ids: a mutation's record is durable before its
//!    commit; any other record is submitted and its [`Ticket`] handed back.
//!
//! The transport answers through [`KeyService::finish`] (or
//! [`KeyService::finish_async`]) once the record's fate is known; that is
//! where every request is counted and timed for the metrics
//! (crate::metrics), by operation, final outcome and transport.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, Resolved};
use super::{Caller, KeyService, Result, State};
use crate::crypto::blob;
use crate::metrics::{METRICS, Meter, Transport, op_index};
use crate::store::{AuditRef, ChangeSink, CommitError, Mutation, Row};
use kmsd_audit::{AuditEvent, Principal, Ticket};
use kmsd_client::KmsError;
use kmsd_policy::{KeyScope, Query, Target, evaluate, parse_grant_token};
use serde_json::Value;
use uuid::Uuid;

/// A request's answer and its audit record.
pub struct Outcome<T> {
    pub result: Result<T>,
    /// A record submitted but maybe not yet durable: wait for it (through
    /// [`KeyService::settle`]) before answering. `None` when the record is
    /// already durable (mutations) or there is none (refused because the
    /// trail is down).
    pub record: Option<Ticket>,
    /// The record's `requestId`.
    pub request_id: String,
    /// The request's operation and start, for the metrics; `None` for
    /// answers made outside the pipeline, which are not counted.
    pub meter: Option<Meter>,
}

impl<T> Outcome<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            result: self.result.map(f),
            record: self.record,
            request_id: self.request_id,
            meter: self.meter,
        }
    }

    /// An answer given without the pipeline (a request refused before it:
    /// throttled), counted under `meter` when it has one.
    pub fn refused(result: Result<T>, meter: Option<Meter>) -> Outcome<T> {
        Outcome {
            result,
            record: None,
            request_id: String::new(),
            meter,
        }
    }
}

/// The parts of a record known before the request runs; consumed by the
/// record (a mutation keeps a copy for the record saying its commit failed).
#[derive(Clone)]
pub(crate) struct EventBase {
    pub name: &'static str,
    pub request_id: String,
    pub principal: Principal,
    pub parameters: Value,
}

/// Attempts of one mutation against a shared store before it gives up.
pub(crate) const MAX_ATTEMPTS: usize = 32;
/// How long a conflict's loser waits for the winner's change to arrive.
const RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// [`Committed::Retry`] after a failed connection rather than a conflict.
pub(crate) const AGAIN: i64 = -1;
/// Attempts after failed connections, within [`MAX_ATTEMPTS`]; the n-th
/// waits 25·2ⁿ ms first (about 3 s in all), while the client library
/// finds the members that still answer.
const MAX_AGAIN: usize = 8;

/// How a mutation's step 4 ended.
pub(crate) enum Committed<T> {
    /// The answer, and the record to wait for (if any).
    Done(Result<T>, Option<Ticket>),
    /// Another instance committed first, at this revision: plan again once
    /// it is applied here. [`AGAIN`]: nothing was committed (a connection
    /// failed): plan again now.
    Retry(i64),
}

fn contention(what: &str) -> KmsError {
    KmsError::internal(format!(
        "{what} lost {MAX_ATTEMPTS} times to other instances' changes; retry"
    ))
}

impl ChangeSink for KeyService {
    fn changed(&self, revision: i64, batch: Vec<Mutation>) {
        let _ = self.apply_at(revision, batch);
    }

    fn reload(&self, revision: i64, rows: Vec<Row>) {
        let policy = kmsd_policy::default_service_policy(self.config().admin_uid);
        let fresh = {
            let st = self.read();
            kmsd_policy::Policy::parse(&policy)
                .map_err(KmsError::from)
                .and_then(|p| {
                    State::from_rows(rows, revision, self.wrap_key(), st.ciphers().clone(), p)
                })
        };
        match fresh {
            Ok(new) => self.replace_state(new),
            Err(e) => {
                tracing::error!(error = %e, "the reloaded state is invalid; keeping the old one")
            }
        }
    }
}

fn invalid_ciphertext() -> KmsError {
    KmsError::invalid_ciphertext("The ciphertext is invalid or was not made by this kmsd.")
}

impl KeyService {
    /// Runs one request through the pipeline.
    pub fn call<O: Operation>(
        &self,
        caller: &Caller,
        principal: &Principal,
        req: O,
    ) -> Outcome<O::Output> {
        let meter = Some(Meter::start(const { op_index(O::NAME) }));
        let base = match self.begin(principal, &req, meter) {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let request_id = base.request_id.clone();
        // Step 0, before any lock: the request alone (and a shared store
        // heard from recently enough).
        if let Err(e) = self.fresh_enough().and_then(|()| req.validate()) {
            let ev = self.event(base, Resolved::default(), None, Some(&e));
            return Outcome {
                result: Err(e),
                record: Some(self.auditor.submit(&ev)),
                request_id,
                meter,
            };
        }
        if O::MUTATES {
            let (result, record) = self.mutate(caller, base, req);
            return Outcome {
                result,
                record,
                request_id,
                meter,
            };
        }
        let (result, ids) = {
            let st = self.read();
            let mut ids = Resolved::default();
            let r = self.plan(&st, caller, self.now(), &mut ids, req);
            (r.map(|(out, _)| out), ids)
        };
        let created = result.as_ref().ok().and_then(O::created_key);
        let event = self.event(base, ids, created, result.as_ref().err());
        Outcome {
            result,
            record: Some(self.auditor.submit(&event)),
            request_id,
            meter,
        }
    }

    /// `DryRun`: steps 0–2 only (validate, resolve, authorize), on the
    /// current state; the answer is `DryRunOperationException` when the
    /// request would have been allowed, its own error otherwise. Audited
    /// like any request; nothing runs.
    pub fn dry_run<O: Operation>(
        &self,
        caller: &Caller,
        principal: &Principal,
        req: O,
    ) -> Outcome<()> {
        let meter = Some(Meter::start(const { op_index(O::NAME) }));
        let base = match self.begin(principal, &req, meter) {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let request_id = base.request_id.clone();
        let mut ids = Resolved::default();
        let checked = req.validate().and_then(|()| {
            let st = self.read();
            self.resolve_refs(&st, req.refs(), &mut ids)?;
            let cx = Exec {
                svc: self,
                st: &st,
                ids,
                caller,
                now: self.now(),
            };
            self.authorize(&cx, &req)
        });
        let result: Result<()> = match checked {
            Ok(()) => Err(KmsError::dry_run(
                "The request would have succeeded, but the DryRun option is set.",
            )),
            Err(e) => Err(e),
        };
        let event = self.event(base, ids, None, result.as_ref().err());
        Outcome {
            result,
            record: Some(self.auditor.submit(&event)),
            request_id,
            meter,
        }
    }

    /// A request's id and the parts of its record known before it runs; or,
    /// while the audit trail cannot be written, the refusal (no record: the
    /// request is not carried out).
    fn begin<O: Operation, T>(
        &self,
        principal: &Principal,
        req: &O,
        meter: Option<Meter>,
    ) -> std::result::Result<EventBase, Outcome<T>> {
        let request_id = self.auditor.request_id();
        if let Err(e) = self.auditor.check_healthy() {
            return Err(Outcome {
                result: Err(e),
                record: None,
                request_id,
                meter,
            });
        }
        Ok(EventBase {
            name: O::NAME,
            request_id,
            principal: principal.clone(),
            parameters: req.audit_parameters(),
        })
    }

    /// Steps 1–4 of a mutation under the writer lock. With a shared store a
    /// commit that lost to another instance's is planned again on the
    /// newer state (which then answers naturally: `AlreadyExistsException`,
    /// `LimitExceededException`, ...), at most [`MAX_ATTEMPTS`] times.
    fn mutate<O: Operation>(
        &self,
        caller: &Caller,
        base: EventBase,
        req: O,
    ) -> (Result<O::Output>, Option<Ticket>) {
        let shared = self.store.shared();
        let mut req = Some(req);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Keep a copy only while another attempt may need it.
            let this = if shared && attempt < MAX_ATTEMPTS {
                req.clone()
            } else {
                req.take()
            };
            let Some(this) = this else {
                return (Err(contention(O::NAME)), None);
            };
            let committed = {
                let _w = self.writer();
                let st = self.read();
                let now = self.now();
                let mut ids = Resolved::default();
                let planned = self.plan(&st, caller, now, &mut ids, this);
                self.commit_audited(st, base.clone(), ids, planned, O::created_key)
            };
            match committed {
                Committed::Done(result, record) => return (result, record),
                Committed::Retry(rev) => {
                    if let Err(e) = self.before_retry(attempt, rev) {
                        return (Err(e), None);
                    }
                }
            }
        }
    }

    /// After a lost commit: waits for the winner's change to be applied
    /// here; refuses after [`MAX_ATTEMPTS`].
    pub(crate) fn before_retry(&self, attempt: usize, rev: i64) -> Result<()> {
        if rev == AGAIN {
            if attempt >= MAX_AGAIN {
                return Err(KmsError::dependency_timeout(
                    "kmsd could not reach its store; nothing was changed; retry later",
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(25 << attempt.min(7)));
            return Ok(());
        }
        if attempt >= MAX_ATTEMPTS {
            return Err(contention("the request"));
        }
        if !self.wait_applied(rev, RETRY_WAIT) {
            return Err(KmsError::dependency_timeout(format!(
                "another instance's change (revision {rev}) did not arrive within {} ms; retry",
                RETRY_WAIT.as_millis()
            )));
        }
        Ok(())
    }

    /// Steps 1–3 on the state `st` (under the caller's guard). `ids` keeps
    /// whatever resolved, for the record, even when a later step fails.
    fn plan<O: Operation>(
        &self,
        st: &State,
        caller: &Caller,
        now: kmsd_client::Timestamp,
        ids: &mut Resolved,
        req: O,
    ) -> Planned<O::Output> {
        self.resolve_refs(st, req.refs(), ids)?;
        let cx = Exec {
            svc: self,
            st,
            ids: *ids,
            caller,
            now,
        };
        self.authorize(&cx, &req)?;
        req.execute(&cx)
    }

    /// Step 4 of a mutation (and of kmsd's own events): an empty plan or a
    /// failure is recorded like a read; a change is recorded durably, then
    /// committed with a reference to its record, then applied. The commit
    /// is conditional on the state's revision (a shared store): the read
    /// lock is released first, so a change arriving from another instance
    /// meanwhile makes it a [`Committed::Retry`].
    pub(crate) fn commit_audited<T>(
        &self,
        st: std::sync::RwLockReadGuard<'_, State>,
        base: EventBase,
        ids: Resolved,
        planned: Planned<T>,
        created_key: impl FnOnce(&T) -> Option<String>,
    ) -> Committed<T> {
        let (out, mut batch) = match planned {
            Ok(p) => p,
            Err(e) => {
                drop(st);
                let ev = self.event(base, ids, None, Some(&e));
                return Committed::Done(Err(e), Some(self.auditor.submit(&ev)));
            }
        };
        let created = created_key(&out);
        if batch.is_empty() {
            drop(st);
            let ev = self.event(base, ids, created, None);
            return Committed::Done(Ok(out), Some(self.auditor.submit(&ev)));
        }
        let expect = st.rev;
        drop(st);
        let ev = self.event(base.clone(), ids, created, None);
        let seq = match self.auditor.write(&ev) {
            Ok(seq) => seq,
            Err(e) => return Committed::Done(Err(e), None),
        };
        batch.push(Mutation::Audited(AuditRef {
            seq,
            request_id: base.request_id.clone(),
            event_name: base.name.to_string(),
        }));
        let started = std::time::Instant::now();
        let committed = self.store.commit_at(&batch, expect);
        METRICS.store_commit_seconds.observe_since(started);
        // The record says the change was made; when it was not, say so. If
        // this record is lost too, verify still finds the first one without
        // its commit (docs/AUDIT.md).
        let undo = |err: &KmsError| {
            let ev = self.event(base.clone(), ids, None, Some(err));
            let _ = self.auditor.write(&ev);
        };
        match committed {
            Ok(rev) => match self.apply_at(rev, batch) {
                Ok(()) => Committed::Done(Ok(out), None),
                Err(e) => Committed::Done(Err(e), None),
            },
            Err(CommitError::Conflict { current }) => {
                METRICS.store_conflicts.inc();
                undo(&KmsError::internal(
                    "not committed: another instance changed the state first; planned again",
                ));
                Committed::Retry(current)
            }
            Err(CommitError::Retryable(e)) => {
                tracing::info!(error = %e, "a commit's connection failed; nothing was written; trying again");
                undo(&KmsError::dependency_timeout(format!(
                    "not committed: the store's connection failed; planned again: {e}"
                )));
                Committed::Retry(AGAIN)
            }
            Err(CommitError::Unavailable(e)) => {
                tracing::warn!(error = %e, "state store unavailable");
                let err = KmsError::dependency_timeout(format!(
                    "kmsd could not reach its store; nothing was changed: {e}"
                ));
                undo(&err);
                Committed::Done(Err(err), None)
            }
            Err(CommitError::Ambiguous(e)) => {
                // It may still commit: no undo record (docs/AUDIT.md); the
                // watch brings the change in if it did.
                tracing::warn!(error = %e, "state store did not answer; outcome unknown");
                let err = KmsError::dependency_timeout(format!(
                    "kmsd's store did not answer in time; the change may or may not have been made: {e}"
                ));
                Committed::Done(Err(err), None)
            }
            Err(CommitError::Failed(e)) => {
                let err = super::internal_store(e);
                undo(&err);
                Committed::Done(Err(err), None)
            }
        }
    }

    pub(crate) fn event(
        &self,
        base: EventBase,
        ids: Resolved,
        created: Option<String>,
        error: Option<&KmsError>,
    ) -> AuditEvent {
        let mut ev = AuditEvent::new(base.name, base.request_id, base.principal)
            .with_parameters(base.parameters);
        for id in [ids.key, ids.destination].into_iter().flatten() {
            ev = ev.with_resource(self.key_arn(id));
        }
        if let Some(arn) = created {
            ev = ev.with_resource(arn);
        }
        if let Some(e) = error {
            ev = ev.with_kms_error(e);
        }
        ev
    }

    /// The answer to send once a submitted record's fate is known.
    pub fn settle<T>(&self, record: Option<Ticket>, result: Result<T>) -> Result<T> {
        match record {
            Some(t) => self.auditor.settle(t.wait(), result),
            None => result,
        }
    }

    /// The answer to send over `via`: [`KeyService::settle`], then the
    /// request counted and timed by that answer (crate::metrics).
    pub fn finish<T>(&self, o: Outcome<T>, via: Transport) -> Result<T> {
        let result = self.settle(o.record, o.result);
        count(o.meter, via, &result);
        result
    }

    /// As [`KeyService::finish`], for async callers.
    pub async fn finish_async<T>(&self, o: Outcome<T>, via: Transport) -> Result<T> {
        let result = self.settle_async(o.record, o.result).await;
        count(o.meter, via, &result);
        result
    }

    /// As [`KeyService::settle`], for async callers. When the trail
    /// commits inline, the task first lets every other runnable task run:
    /// those that are serving requests queue their records meanwhile, and
    /// the first of them to wait writes the whole batch with one commit.
    pub async fn settle_async<T>(&self, record: Option<Ticket>, result: Result<T>) -> Result<T> {
        match record {
            Some(t) => {
                if t.commits_inline() {
                    tokio::task::yield_now().await;
                }
                self.auditor.settle(t.await, result)
            }
            None => result,
        }
    }

    fn resolve_refs(&self, st: &State, refs: Refs<'_>, ids: &mut Resolved) -> Result<()> {
        if let Some(r) = refs.key {
            ids.key = Some(self.resolve_ref(st, r)?);
        }
        if let Some(r) = refs.destination {
            ids.destination = Some(self.resolve_ref(st, r)?);
        }
        if let Some(r) = refs.other {
            ids.other = Some(self.resolve_ref(st, r)?);
        }
        Ok(())
    }

    fn resolve_ref(&self, st: &State, r: KeyRef<'_>) -> Result<Uuid> {
        match r {
            KeyRef::Named(k) => self.resolve(st, k),
            KeyRef::Direct(k) => {
                if k.starts_with("alias/") || k.contains(":alias/") {
                    return Err(KmsError::validation(
                        "TargetKeyId must be a key id or key ARN, not an alias",
                    ));
                }
                self.resolve(st, k)
            }
            KeyRef::Blob(ct) => {
                let h = blob::parse_header(ct).map_err(|_| invalid_ciphertext())?;
                if st.keys.contains_key(&h.key_id) {
                    Ok(h.key_id)
                } else {
                    Err(invalid_ciphertext())
                }
            }
            KeyRef::AliasTarget(alias) => {
                st.aliases.get(alias).map(|a| a.target).ok_or_else(|| {
                    KmsError::not_found(format!("Alias {} is not found.", self.alias_arn(alias)))
                })
            }
            KeyRef::GrantOf(r) => self.grant_for_retire(st, r).map(|(k, _)| k),
        }
    }

    /// Step 2: every check of the operation against the resolved ids,
    /// evaluated against the key policy, the service policy and the key's
    /// grants. A denial is an `AccessDeniedException` naming the caller,
    /// the action and the key.
    fn authorize<O: Operation>(&self, cx: &Exec<'_>, req: &O) -> Result<()> {
        // kmsd grants take effect at once; tokens only have to be ours.
        for t in req.grant_tokens() {
            parse_grant_token(t)?;
        }
        for r in O::CHECKS.iter().chain(req.extra_checks()) {
            let key = match r.target {
                Target::Service => None,
                Target::Key => Some(cx.ids.key),
                Target::DestinationKey => Some(cx.ids.destination),
            };
            let key = match key {
                None => None,
                Some(Some(id)) => Some(id),
                Some(None) => {
                    return Err(KmsError::internal(format!(
                        "{} checks {} on a key it does not name",
                        O::NAME,
                        r.action
                    )));
                }
            };
            let context = req.conditions(cx, r.target)?;
            let entry = match key {
                Some(id) => Some(self.entry(cx.st, id)?),
                None => None,
            };
            let (id_text, arn) = key
                .map(|id| (id.to_string(), self.key_arn(id)))
                .unwrap_or_default();
            let q = Query {
                caller: cx.caller,
                admin_uid: self.config().admin_uid,
                action: r.action,
                key: entry.map(|e| KeyScope {
                    key_id: &id_text,
                    arn: &arn,
                    policy: &e.policy,
                    grants: &e.grants,
                }),
                service_policy: &cx.st.service_policy,
                context: &context,
            };
            let decision = evaluate(&q);
            if !decision.is_allowed() {
                tracing::info!(op = O::NAME, uid = cx.caller.uid, action = r.action, key = %arn, "access denied");
                return Err(KmsError::access_denied(q.denied_message(&decision)));
            }
        }
        Ok(())
    }
}

/// Counts an answer in the metrics, when it is metered.
fn count<T>(meter: Option<Meter>, via: Transport, result: &Result<T>) {
    if let Some(m) = meter {
        METRICS.answered(m, via, result.as_ref().err().map(|e| e.kind));
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
