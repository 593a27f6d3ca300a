//! Secrets at rest under the encryption keys (contract §12): private signing keys, TOTP
//! secrets and waiting mail are sealed with the first key of `AUTHGATE_ENCRYPTION_KEYS`.
//! Values stored in clear before a key was configured, or sealed with an older key, are
//! sealed anew at start-up and by `authgate keys reencrypt`. (One-time codes are MACs, not
//! sealed: they live minutes, so an older key only needs to stay configured that long.)

use sea_orm::DatabaseConnection;

use super::{error::AuthError, second_factors};
use crate::{
    store::{self, mfa_factors, outbox, signing_keys},
    tokens::keys::private_key_context,
    vault::Vault,
};

/// How many values were sealed anew, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    pub signing_keys: usize,
    pub totp_secrets: usize,
    pub mails: usize,
}

/// Seals every value that is in clear or under a key other than the first, in one
/// transaction. Opening each one also proves the configured keys are the right ones: a wrong
/// or missing key stops here with an error naming its id.
pub async fn reseal_all(db: &DatabaseConnection, vault: &Vault) -> Result<Resealed, AuthError> {
    let mut resealed = Resealed::default();
    if !vault.is_enabled() {
        return Ok(resealed);
    }
    let reseal = |context: &str, stored: &str| -> Result<Option<String>, AuthError> {
        if !vault.needs_reseal(stored) {
            return Ok(None);
        }
        let opened = vault
            .open(context, stored)
            .map_err(|err| AuthError::internal_from("a secret at rest cannot be opened", err))?;
        vault
            .seal(context, &opened)
            .map(Some)
            .map_err(|err| AuthError::internal_from("a secret at rest could not be sealed", err))
    };
    let txn = store::begin(db).await?;
    for key in signing_keys::all(&txn).await? {
        if let Some(sealed) = reseal(&private_key_context(&key.kid), key.private_key.expose())? {
            signing_keys::set_private_key(&txn, &key.kid, sealed).await?;
            resealed.signing_keys += 1;
        }
    }
    for factor in mfa_factors::with_secrets(&txn).await? {
        let Some(secret) = &factor.secret else {
            continue;
        };
        let context = second_factors::secret_context(factor.user_id);
        if let Some(sealed) = reseal(&context, secret.expose())? {
            mfa_factors::set_secret(&txn, factor.id, sealed).await?;
            resealed.totp_secrets += 1;
        }
    }
    for mail in outbox::all(&txn).await? {
        if let Some(sealed) = reseal(&super::outbox::context(mail.id), &mail.body)? {
            outbox::set_body(&txn, mail.id, sealed).await?;
            resealed.mails += 1;
        }
    }
    txn.commit().await?;
    Ok(resealed)
}
