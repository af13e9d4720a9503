//! The kinds of event in the audit trail. Stored as their strings (the
//! `kind` column, the admin API's `kind` filter and docs/audit.md name
//! them), so a variant's string never changes once released.

/// Declares the enum and its strings in one list.
macro_rules! audit_kinds {
    ($($variant:ident => $text:literal,)*) => {
        /// What happened; `as_str` is what is stored and shown.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $($variant,)*
        }

        impl AuditKind {
            /// Every kind, in the order above.
            pub const ALL: &'static [AuditKind] = &[$(AuditKind::$variant,)*];

            /// The stored form, e.g. `login.succeeded`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditKind::$variant => $text,)*
                }
            }

            /// The kind a stored string names, if it names one.
            pub fn parse(text: &str) -> Option<AuditKind> {
                match text {
                    $($text => Some(AuditKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

audit_kinds! {
    AccountLocked => "account.locked",
    AdminAdminGranted => "admin.admin_granted",
    AdminAdminRevoked => "admin.admin_revoked",
    AdminClientCreated => "admin.client_created",
    AdminClientDeleted => "admin.client_deleted",
    AdminClientSecretRotated => "admin.client_secret_rotated",
    AdminClientUpdated => "admin.client_updated",
    AdminKeysRotated => "admin.keys_rotated",
    AdminMailRetried => "admin.mail_retried",
    AdminPasskeyRemoved => "admin.passkey_removed",
    AdminPasswordResetSent => "admin.password_reset_sent",
    AdminRefreshTokenRevoked => "admin.refresh_token_revoked",
    AdminSessionRevoked => "admin.session_revoked",
    AdminUserCreated => "admin.user_created",
    AdminUserDisabled => "admin.user_disabled",
    AdminUserEnabled => "admin.user_enabled",
    AdminUserSignedOut => "admin.user_signed_out",
    AdminUserUnlocked => "admin.user_unlocked",
    AdminUserUpdated => "admin.user_updated",
    AdminUsersImported => "admin.users_imported",
    ConsentDenied => "consent.denied",
    ConsentGranted => "consent.granted",
    ConsentRevoked => "consent.revoked",
    EmailVerified => "email.verified",
    EmailChangeConfirmed => "email_change.confirmed",
    EmailChangeFailed => "email_change.failed",
    EmailChangeRequested => "email_change.requested",
    EmailChangeThrottled => "email_change.throttled",
    LoginFailed => "login.failed",
    LoginPasswordAccepted => "login.password_accepted",
    LoginRefusedIpThrottled => "login.refused_ip_throttled",
    LoginRefusedLocked => "login.refused_locked",
    LoginSucceeded => "login.succeeded",
    Logout => "logout",
    MfaDisableFailed => "mfa.disable_failed",
    MfaDisabled => "mfa.disabled",
    MfaEnrolFailed => "mfa.enrol_failed",
    MfaEnrolled => "mfa.enrolled",
    MfaFailed => "mfa.failed",
    MfaRecoveryCodeUsed => "mfa.recovery_code_used",
    MfaRecoveryCodesFailed => "mfa.recovery_codes_failed",
    MfaRecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
    MfaRefusedLocked => "mfa.refused_locked",
    MfaReset => "mfa.reset",
    PasskeyAdded => "passkey.added",
    PasskeyCloneWarning => "passkey.clone_warning",
    PasskeyRegisterFailed => "passkey.register_failed",
    PasskeyRemoved => "passkey.removed",
    PasskeyRenamed => "passkey.renamed",
    PasskeySigninFailed => "passkey.signin_failed",
    PasswordChangeFailed => "password_change.failed",
    PasswordChangeSucceeded => "password_change.succeeded",
    PasswordResetCompleted => "password_reset.completed",
    PasswordResetInvalidToken => "password_reset.invalid_token",
    PasswordResetRequested => "password_reset.requested",
    PasswordResetThrottled => "password_reset.throttled",
    PasswordResetUnknownEmail => "password_reset.unknown_email",
    ProfileNameChanged => "profile.name_changed",
    ReauthFailed => "reauth.failed",
    ReauthSucceeded => "reauth.succeeded",
    RefreshTokenReused => "refresh_token.reused",
    RegistrationCreated => "registration.created",
    RegistrationDuplicate => "registration.duplicate",
    RegistrationThrottled => "registration.throttled",
    SessionEnded => "session.ended",
    SessionOthersEnded => "session.others_ended",
    TokenCodeReplayed => "token.code_replayed",
    TokenIssued => "token.issued",
    UserImported => "user.imported",
    UserImportLinked => "user.import_linked",
    UserImportUpdated => "user.import_updated",
    UserMigrated => "user.migrated",
}

impl AuditKind {
    /// An administrator's action (the `admin.` kinds), as opposed to the
    /// owner's own.
    pub fn by_administrator(self) -> bool {
        self.as_str().starts_with("admin.") || self == AuditKind::MfaReset
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AuditKind;

    #[test]
    fn every_kind_reads_back_from_its_stored_string() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(AuditKind::parse("login.unknown"), None);
    }
}
