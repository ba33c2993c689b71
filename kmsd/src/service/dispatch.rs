//! Routes one request to its handler.

use super::{Caller, KeyService, Result};
use kmsd_client::{KmsError, Request, Response};

impl KeyService {
    pub fn handle(&self, caller: &Caller, request: Request) -> Result<Response> {
        use Request as Q;
        use Response as R;
        Ok(match request {
            Q::CreateKey(r) => {
                let policy = r
                    .policy
                    .clone()
                    .unwrap_or_else(|| self.default_key_policy(caller));
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
            other => {
                return Err(KmsError::unsupported(format!(
                    "{} is not available in this kmsd build",
                    other.name()
                )));
            }
        })
    }

    fn default_key_policy(&self, caller: &Caller) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Enable administrator and creator","Effect":"Allow","Principal":{{"Unix":["uid:{}","uid:{}"]}},"Action":"kms:*","Resource":"*"}}]}}"#,
            self.config().admin_uid,
            caller.uid
        )
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
