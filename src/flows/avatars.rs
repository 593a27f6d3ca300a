//! Profile pictures: uploading one, removing it, and serving it to anyone.
//!
//! An upload is decoded and re-encoded by the picture processor before anything is written
//! (so a refused upload leaves no trace); the picture and the profile's `avatar_url` then
//! change together, in one audited transaction.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        Account, AuthError, ClientInfo,
        accounts::{AccountStatus, Accounts, stored_picture_path},
        audit::{self, Action, AuditTrail, Event},
        parts::Parts,
        pictures::{Picture, PictureError, PictureProcessor},
    },
    store::{self, avatars, profiles, users},
};

/// A stored picture, as `GET /avatars/{user_id}` serves it.
pub struct StoredPicture {
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Strong, quotes included.
    pub etag: String,
}

pub struct Avatars {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
    pictures: Arc<PictureProcessor>,
}

impl Avatars {
    pub fn new(parts: &Parts) -> Avatars {
        Avatars {
            db: parts.db.clone(),
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
            pictures: Arc::clone(&parts.pictures),
        }
    }

    /// Makes the upload the account's picture: decoded whatever it claims to be, cropped to
    /// its centre square and re-encoded at 256×256 px, then stored, with `avatar_url`
    /// pointing at it.
    pub async fn upload(
        &self,
        account: &Account,
        upload: Vec<u8>,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let picture = self
            .pictures
            .process(upload)
            .await
            .map_err(|err| match err {
                PictureError::Invalid(reason) => {
                    // Why is for the operator; the client only learns it was refused.
                    tracing::debug!(%reason, "picture refused");
                    AuthError::InvalidImage
                }
                PictureError::Busy => AuthError::Overloaded {
                    retry_after_seconds: 1,
                },
                PictureError::Internal(reason) => {
                    AuthError::internal_from("a picture could not be processed", reason)
                }
            })?;
        self.replace(account, Some(picture), client).await
    }

    /// Removes the account's picture, its stored one and any URL set by hand alike.
    pub async fn remove(
        &self,
        account: &Account,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        self.replace(account, None, client).await
    }

    /// The stored picture of a user, if there is one. Pictures are public: anyone who knows
    /// the user id may see it.
    pub async fn picture(&self, user_id: Uuid) -> Result<Option<StoredPicture>, AuthError> {
        let stored = avatars::find(&self.db, user_id).await?;
        Ok(stored.map(|row| StoredPicture {
            content_type: row.content_type,
            bytes: row.image,
            etag: row.etag,
        }))
    }

    /// Stores `picture` as the account's (or removes the picture when `None`) and points
    /// `avatar_url` at it, in one transaction that records `avatar_changed`.
    async fn replace(
        &self,
        account: &Account,
        picture: Option<Picture>,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let now = self.clock.now();
        let txn = store::begin(&self.db).await?;
        // Locked, so that an upload racing a deletion or a PATCH of `avatar_url` cannot leave
        // a URL and a stored picture that disagree.
        let Some(user) = users::lock(&txn, account.id).await? else {
            return Err(AuthError::Unauthorized);
        };
        let stored_profile = profiles::find(&txn, user.id).await?;
        let before = self.accounts.of_rows(user.clone(), stored_profile.clone());
        if before.status != AccountStatus::Active {
            return Err(AuthError::Unauthorized);
        }
        let mut profile = stored_profile.unwrap_or_else(|| profiles::empty(user.id));
        let previous_url = profile.avatar_url.take();
        let (details, removed) = match picture {
            Some(picture) => {
                profile.avatar_url = Some(stored_picture_path(user.id, &picture.etag));
                let details =
                    json!({"content_type": picture.content_type, "bytes": picture.bytes.len()});
                avatars::save(
                    &txn,
                    avatars::Model {
                        user_id: user.id,
                        content_type: picture.content_type.into(),
                        image: picture.bytes,
                        etag: picture.etag,
                        updated_at: now,
                    },
                )
                .await?;
                (details, false)
            }
            None => (json!({}), avatars::delete(&txn, user.id).await?),
        };
        // The same picture uploaded again has the same URL (its version is its ETag), and
        // removing what is not there changes nothing: neither is an event.
        if profile.avatar_url == previous_url && !removed {
            txn.commit().await?;
            return Ok(before);
        }
        profiles::save(&txn, profile.clone()).await?;
        let user = users::update(&txn, user.id, users::AccountChanges::default(), now).await?;
        let after = self.accounts.of_rows(user, Some(profile));
        let mut event = Event::new(Action::AvatarChanged, Some(account.id), client)
            .by(account.id)
            .with(details);
        if let Some(changes) = audit::changes(&before, &after) {
            event = event.with_changes(changes);
        }
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(after)
    }
}
