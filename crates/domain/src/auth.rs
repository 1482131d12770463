//! Roles and permissions. Every route and command names the permission it
//! needs; this table is the single place that says which role holds which.

string_enum!(
    /// Staff roles.
    Role {
        Admin = "admin",
        Manager = "manager",
        Marketing = "marketing",
        CustomerService = "customer_service",
        MembershipDesk = "membership_desk",
        Doctor = "doctor",
        Analyst = "analyst",
    }
);

string_enum!(
    /// What a route or command may do.
    Permission {
        /// Read patient records (contact fields masked unless `PersonalData`).
        PatientsRead = "patients:read",
        /// Create and edit patients.
        PatientsWrite = "patients:write",
        /// See phone numbers, emails and national ids unmasked.
        PersonalData = "personal_data:read",
        /// Read visits.
        VisitsRead = "visits:read",
        /// Record, change and delete visits.
        VisitsWrite = "visits:write",
        /// Aggregate figures without personal data.
        AnalyticsRead = "analytics:read",
        /// Run analytics jobs (refresh the stored patient scores).
        AnalyticsManage = "analytics:manage",
        /// Staff accounts and API tokens.
        AdminUsers = "admin:users",
        /// Export everything about a patient, or erase it (data rights).
        DataRights = "data_rights:manage",
        /// Read the audit log.
        AuditRead = "audit:read",
        /// See memberships, points balances and ledgers.
        MembersRead = "members:read",
        /// Enrol members, earn and redeem points, redeem vouchers at the desk.
        MembersWrite = "members:write",
        /// Configure the loyalty programme: tiers, earning rules, campaigns,
        /// rewards; adjust and reverse points.
        LoyaltyManage = "loyalty:manage",
        /// Create, change and delete saved segments.
        SegmentsManage = "segments:manage",
        /// Import files from hospital systems and export patient lists.
        DataImport = "data:import",
    }
);

impl Role {
    /// Whether this role holds `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match self {
            Admin => true,
            Manager => !matches!(p, AdminUsers | AuditRead),
            Marketing => matches!(
                p,
                PatientsRead | VisitsRead | AnalyticsRead | MembersRead | SegmentsManage
            ),
            CustomerService => matches!(
                p,
                PatientsRead | PatientsWrite | PersonalData | VisitsRead | MembersRead
            ),
            MembershipDesk => matches!(
                p,
                PatientsRead
                    | PatientsWrite
                    | PersonalData
                    | VisitsRead
                    | MembersRead
                    | MembersWrite
            ),
            Doctor => matches!(
                p,
                PatientsRead | PersonalData | VisitsRead | VisitsWrite | MembersRead
            ),
            Analyst => matches!(p, AnalyticsRead | SegmentsManage),
        }
    }
}

/// Masks the middle of a phone number, email local part or id:
/// `13812345678` → `138****5678`, `li.na@example.com` → `l***@example.com`.
pub fn mask(s: &str) -> String {
    if let Some((local, domain)) = s.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let keep_tail = 4.min(n / 2);
    let keep_head = 3.min(n - keep_tail - 1);
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[n - keep_tail..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(n - keep_head - keep_tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_phones_emails_and_ids() {
        assert_eq!(mask("13812345678"), "138****5678");
        assert_eq!(mask("li.na@example.com"), "l***@example.com");
        assert_eq!(mask("110101199003074258"), "110***********4258");
        assert_eq!(mask("1234"), "****");
        assert!(!mask("12345").contains("234"));
    }

    #[test]
    fn analyst_sees_no_personal_data_and_admin_everything() {
        for p in Permission::ALL {
            assert!(Role::Admin.allows(*p));
        }
        assert!(!Role::Analyst.allows(Permission::PatientsRead));
        assert!(!Role::Marketing.allows(Permission::PersonalData));
        assert!(!Role::Manager.allows(Permission::AdminUsers));
        // Only admins read the audit log; admins and managers handle
        // data-rights requests.
        for r in Role::ALL {
            assert_eq!(r.allows(Permission::AuditRead), *r == Role::Admin, "{r}");
            assert_eq!(
                r.allows(Permission::DataRights),
                matches!(r, Role::Admin | Role::Manager),
                "{r}"
            );
        }
        // Only admins and managers run analytics jobs.
        for r in Role::ALL {
            assert_eq!(
                r.allows(Permission::AnalyticsManage),
                matches!(r, Role::Admin | Role::Manager),
                "{r}"
            );
        }
    }
}
