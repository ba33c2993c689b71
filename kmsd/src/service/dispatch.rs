//! Routes a [`Request`] to its operation's pipeline run. Generated from
//! kmsd-client's list of operations: a request type without an
//! [`Operation`] impl does not compile.

use super::operation::Operation;
use super::pipeline::Outcome;
use super::{Caller, KeyService};
use kmsd_audit::Principal;
use kmsd_client::*;

macro_rules! dispatch {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {
        impl KeyService {
            /// Resolves, authorizes, runs and audits one request.
            pub fn handle(
                &self,
                caller: &Caller,
                principal: &Principal,
                request: Request,
            ) -> Outcome<Response> {
                match request {
                    $(Request::$name(r) => self.call(caller, principal, r).map(Response::$name),)*
                }
            }

            /// `DryRun`: validates, resolves and authorizes the request
            /// without running it (see [`KeyService::dry_run`]).
            pub fn handle_dry_run(
                &self,
                caller: &Caller,
                principal: &Principal,
                request: Request,
            ) -> Outcome<()> {
                match request {
                    $(Request::$name(r) => self.dry_run(caller, principal, r),)*
                }
            }
        }

        /// Whether a request changes state (and so waits on a durable
        /// commit).
        pub fn is_mutation(r: &Request) -> bool {
            match r {
                $(Request::$name(_) => <$req as Operation>::MUTATES,)*
            }
        }

        /// Every operation: its name, whether it mutates, its checks.
        pub const OPERATIONS: &[(&str, bool, &[kmsd_policy::Requirement])] = &[
            $((stringify!($name), <$req as Operation>::MUTATES, <$req as Operation>::CHECKS),)*
        ];
    };
}

kmsd_client::for_each_operation!(dispatch);

#[cfg(test)]
mod tests {
    use super::OPERATIONS;
    use kmsd_policy::{ACTIONS, Target};

    #[test]
    fn every_check_names_a_known_action() {
        assert!(OPERATIONS.len() >= 35);
        for (name, _, checks) in OPERATIONS {
            assert!(!checks.is_empty(), "{name}");
            for r in *checks {
                assert!(ACTIONS.contains(&r.action), "{name}: {}", r.action);
                if let Some(op) = r.grant_operation {
                    assert_eq!(op.action(), r.action, "{name}");
                }
            }
        }
    }

    #[test]
    fn keyless_operations_are_service_scoped() {
        for (name, _, checks) in OPERATIONS {
            let keyless = [
                "CreateKey",
                "ListKeys",
                "ListAliases",
                "GenerateRandom",
                "ListRetirableGrants",
                "GetServicePolicy",
                "PutServicePolicy",
                "CreateAccessKey",
                "ListAccessKeys",
                "UpdateAccessKey",
                "DeleteAccessKey",
            ]
            .contains(name);
            assert_eq!(
                checks.iter().all(|r| r.target == Target::Service),
                keyless,
                "{name}"
            );
        }
    }

    #[test]
    fn reads_do_not_mutate_and_grants_allow_only_their_operations() {
        let mutating: Vec<&str> = OPERATIONS
            .iter()
            .filter(|(_, m, _)| *m)
            .map(|(n, _, _)| *n)
            .collect();
        for read in [
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "DescribeKey",
            "ListGrants",
        ] {
            assert!(!mutating.contains(&read), "{read}");
        }
        for m in [
            "CreateGrant",
            "DisableKey",
            "UpdateAlias",
            "PutKeyPolicy",
            "TagResource",
        ] {
            assert!(mutating.contains(&m), "{m}");
        }
        let mut grantable: Vec<&str> = OPERATIONS
            .iter()
            .filter(|(_, _, c)| c.iter().any(|r| r.grant_operation.is_some()))
            .map(|(n, _, _)| *n)
            .collect();
        grantable.sort_unstable();
        assert_eq!(
            grantable,
            [
                "CreateGrant",
                "Decrypt",
                "DescribeKey",
                "Encrypt",
                "GenerateDataKey",
                "GenerateDataKeyWithoutPlaintext",
                "ReEncrypt",
                "RetireGrant",
            ]
        );
    }
}
