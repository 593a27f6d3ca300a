//! Accounts as the rest of the service sees them: the user object, loaded in one query.

use chrono::{DateTime, NaiveDate, Utc};
use poem_openapi::Object;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::error::AuthError;
use crate::store::{profiles, users};

/// The user object. Never carries a password hash, code or token.
#[derive(Debug, Clone, Object)]
#[oai(rename = "User", example)]
pub struct Account {
    pub id: Uuid,
    /// Lowercased when stored.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// International form, e.g. `+15551234567`.
    #[oai(nullable)]
    pub phone_number: Option<String>,
    pub role: String,
    /// True once the address was proven with a code.
    pub is_verified: bool,
    pub is_active: bool,
    pub profile: Profile,
    /// True when first and last name are set.
    pub profile_complete: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Object)]
pub struct Profile {
    /// Up to 1000 characters.
    pub bio: String,
    /// An http(s) URL.
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    /// `YYYY-MM-DD`.
    #[oai(nullable)]
    pub date_of_birth: Option<NaiveDate>,
}

impl Account {
    /// The account of a user row and its profile row. Every user gets a profile row at
    /// registration; an empty one stands in should it be gone.
    pub fn from_rows(user: users::Model, profile: Option<profiles::Model>) -> Account {
        let profile = profile.unwrap_or_else(|| profiles::empty(user.id));
        let profile_complete =
            !user.first_name.trim().is_empty() && !user.last_name.trim().is_empty();
        Account {
            id: user.id,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            phone_number: user.phone_number,
            role: user.role,
            is_verified: user.is_verified,
            is_active: user.is_active,
            profile: Profile {
                bio: profile.bio,
                avatar_url: profile.avatar_url,
                date_of_birth: profile.date_of_birth,
            },
            profile_complete,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// Reads accounts.
pub struct Accounts {
    db: DatabaseConnection,
}

impl Accounts {
    pub fn new(db: DatabaseConnection) -> Accounts {
        Accounts { db }
    }

    /// The account with this id, if it exists, read through `conn` (a transaction that just
    /// changed it, say).
    pub async fn load(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<Option<Account>, AuthError> {
        let found = users::find_with_profile(conn, user_id).await?;
        Ok(found.map(|(user, profile)| Account::from_rows(user, profile)))
    }

    /// The account behind a verified access token. A user deleted or disabled since the token
    /// was minted is refused: tokens are stateless, accounts are not.
    pub async fn current(&self, user_id: Uuid) -> Result<Account, AuthError> {
        match self.load(&self.db, user_id).await? {
            Some(account) if account.is_active => Ok(account),
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// The account just written in a committed transaction.
    pub async fn reload(&self, user_id: Uuid) -> Result<Account, AuthError> {
        self.load(&self.db, user_id)
            .await?
            .ok_or_else(|| AuthError::internal("an account vanished right after it was written"))
    }
}
