//! Routes one request to its handler.

use super::{Caller, KeyService, Result};
use kmsd_client::{Request, Response};

impl KeyService {
    /// Authorizes, then runs one request.
    pub fn handle(&self, caller: &Caller, request: Request) -> Result<Response> {
        self.authorize(caller, &request)?;
        self.execute(caller, request)
    }

    fn execute(&self, caller: &Caller, request: Request) -> Result<Response> {
        use Request as Q;
        use Response as R;
        Ok(match request {
            Q::CreateKey(r) => {
                let policy = self.new_key_policy(caller, &r)?;
                R::CreateKey(self.create_key(caller, r, policy)?)
            }
            Q::DescribeKey(r) => R::DescribeKey(self.describe_key(r)?),
            Q::ListKeys(r) => R::ListKeys(self.list_keys(r)?),
            Q::EnableKey(r) => R::EnableKey(self.enable_key(r)?),
            Q::DisableKey(r) => R::DisableKey(self.disable_key(r)?),
            Q::ScheduleKeyDeletion(r) => R::ScheduleKeyDeletion(self.schedule_key_deletion(r)?),
            Q::CancelKeyDeletion(r) => R::CancelKeyDeletion(self.cancel_key_deletion(r)?),
            Q::EnableKeyRotation(r) => R::EnableKeyRotation(self.enable_key_rotation(r)?),
            Q::DisableKeyRotation(r) => R::DisableKeyRotation(self.disable_key_rotation(r)?),
            Q::GetKeyRotationStatus(r) => R::GetKeyRotationStatus(self.get_key_rotation_status(r)?),
            Q::RotateKeyOnDemand(r) => R::RotateKeyOnDemand(self.rotate_key_on_demand(r)?),
            Q::ListKeyRotations(r) => R::ListKeyRotations(self.list_key_rotations(r)?),
            Q::CreateAlias(r) => R::CreateAlias(self.create_alias(r)?),
            Q::UpdateAlias(r) => R::UpdateAlias(self.update_alias(r)?),
            Q::DeleteAlias(r) => R::DeleteAlias(self.delete_alias(r)?),
            Q::ListAliases(r) => R::ListAliases(self.list_aliases(r)?),
            Q::TagResource(r) => R::TagResource(self.tag_resource(r)?),
            Q::UntagResource(r) => R::UntagResource(self.untag_resource(r)?),
            Q::ListResourceTags(r) => R::ListResourceTags(self.list_resource_tags(r)?),
            Q::Encrypt(r) => R::Encrypt(self.encrypt(r)?),
            Q::Decrypt(r) => R::Decrypt(self.decrypt(r)?),
            Q::ReEncrypt(r) => R::ReEncrypt(self.re_encrypt(r)?),
            Q::GenerateDataKey(r) => R::GenerateDataKey(self.generate_data_key(r)?),
            Q::GenerateDataKeyWithoutPlaintext(r) => {
                R::GenerateDataKeyWithoutPlaintext(self.generate_data_key_without_plaintext(r)?)
            }
            Q::GenerateRandom(r) => R::GenerateRandom(self.generate_random(r)?),
            Q::PutKeyPolicy(r) => R::PutKeyPolicy(self.put_key_policy(caller, r)?),
            Q::GetKeyPolicy(r) => R::GetKeyPolicy(self.get_key_policy(r)?),
            Q::ListKeyPolicies(r) => R::ListKeyPolicies(self.list_key_policies(r)?),
            Q::CreateGrant(r) => R::CreateGrant(self.create_grant(caller, r)?),
            Q::ListGrants(r) => R::ListGrants(self.list_grants(r)?),
            Q::ListRetirableGrants(r) => R::ListRetirableGrants(self.list_retirable_grants(r)?),
            Q::RetireGrant(r) => R::RetireGrant(self.retire_grant(r)?),
            Q::RevokeGrant(r) => R::RevokeGrant(self.revoke_grant(r)?),
            Q::GetServicePolicy(_) => R::GetServicePolicy(self.get_service_policy()),
            Q::PutServicePolicy(r) => R::PutServicePolicy(self.put_service_policy(r)?),
        })
    }
}

/// Whether a request changes state (and so waits on a durable commit).
pub fn is_mutation(r: &Request) -> bool {
    use Request as Q;
    !matches!(
        r,
        Q::DescribeKey(_)
            | Q::ListKeys(_)
            | Q::GetKeyRotationStatus(_)
            | Q::ListKeyRotations(_)
            | Q::ListAliases(_)
            | Q::ListResourceTags(_)
            | Q::Encrypt(_)
            | Q::Decrypt(_)
            | Q::ReEncrypt(_)
            | Q::GenerateDataKey(_)
            | Q::GenerateDataKeyWithoutPlaintext(_)
            | Q::GenerateRandom(_)
            | Q::GetKeyPolicy(_)
            | Q::ListKeyPolicies(_)
            | Q::ListGrants(_)
            | Q::ListRetirableGrants(_)
            | Q::GetServicePolicy(_)
    )
}
