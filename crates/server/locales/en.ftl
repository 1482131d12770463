# Rapport staff console — English.
# Every message id must exist in zh-CN.ftl and es.ftl too (a test checks).

skip-to-content = Skip to content
nav-label = Main navigation
nav-section-admin = Administration
nav-dashboard = Dashboard
nav-patients = Patients
nav-audit = Audit log
nav-users = Staff accounts
nav-tokens = API tokens
nav-settings = Settings
logout = Log out
language-label = Language
language-apply = Apply
save = Save
actions = Actions

role-admin = Administrator
role-manager = Manager
role-marketing = Marketing
role-customer-service = Customer service
role-membership-desk = Membership desk
role-doctor = Doctor
role-analyst = Analyst

login-title = Sign in
login-subtitle = Patient relationships and membership for your hospital.
login-login = Login
login-password = Password
login-submit = Sign in
login-missing = Enter your login and your password.
login-invalid = The login or the password is not correct.
login-locked = Too many failed attempts: this account is locked until { $until }.

error-home = Back to the start
error-forbidden-title = Not available for your role
error-forbidden-text = Your role does not include this page or action. Ask an administrator if you need it.
error-not-found-title = Not found
error-not-found-text = This page or record does not exist, or it was removed.
error-internal-title = Something went wrong
error-internal-text = The server could not complete the request. Please try again; if it persists, tell your administrator.
error-csrf-title = Request refused
error-csrf-text = This form did not come from this site or has expired. Reload the page and try again.
error-too-large-title = Too much data
error-too-large-text = The form sent more data than the server accepts.
error-invalid-title = Invalid choice
error-invalid-text = The value sent is not one of the choices offered.

field-error-required = This field is required.
field-error-invalid-date = Enter a date as YYYY-MM-DD.
field-error-date-out-of-range = The date is outside the accepted range.
field-error-invalid-amount = Enter an amount with at most two decimals, e.g. 120.50.
field-error-negative-amount = The amount cannot be negative.
field-error-amount-too-large = The amount is too large.
field-error-invalid-enum = Choose one of the options offered.
field-error-invalid-id = Use letters, digits, dashes or underscores.
field-error-too-long = This text is too long.
field-error-invalid-text = Enter between 1 and 50 characters.
field-error-invalid-login = Use 1 to 64 lowercase letters, digits, dots, dashes or underscores.
field-error-password-too-short = The password needs at least 12 characters.
field-error-password-too-long = The password is too long.
field-error-password-is-login = The password cannot be the login.
field-error-password-unchanged = The new password must differ from the current one.
field-error-incorrect = This is not your current password.
field-error-visit-exists = A visit with this id already exists.
field-error-user-exists = A staff account with this login already exists.

dashboard-as-of = As of { $date }
dashboard-computed = Figures computed { $at }
kpi-heading = Key figures
kpi-period = { $count ->
    [one] last day vs the day before
   *[other] last { $n } days vs the { $n } days before
}
kpi-prior = vs { $value }
kpi-patients = Patients
kpi-visits = Visits
kpi-revenue = Revenue
kpi-new-patients = New patients
kpi-return-rate = Return-visit rate
kpi-nps = NPS
kpi-complaints = Complaints
kpi-follow-ups = Follow-ups due
kpi-new-members = New members
planned-title = Coming with later modules
planned-kpi-text = These figures appear once their modules are in use; nothing is estimated in their place.
planned-patient-text = These sections appear once their modules are in use.
planned-membership = Membership and points
planned-follow-ups = Follow-ups
planned-messages = Messages
planned-surveys = Surveys
planned-complaints = Complaints

chart-months-title = Revenue and visits by month
chart-revenue = Revenue
chart-visits = Visits
chart-segments-title = Patients by RFM segment
chart-pareto-title = Revenue concentration (Pareto)
chart-pareto-desc = The top 20% of patients bring { $share } of the revenue.
chart-pareto-point = top 20% → { $share }
chart-pareto-summary = Top 20% of patients: { $share } of revenue
chart-pareto-x = share of patients, largest spenders first
chart-cohorts-title = Cohort retention
chart-cohorts-desc = For each month of first visits, the share of those patients who came back in each following month.
chart-cohort-size = Patients
chart-month-offset = M{ $k }

empty-dashboard-title = No visits yet
empty-dashboard-text = The dashboard fills in once visits are recorded or imported.
empty-list-title = No patients here
empty-list-text = No patient matches these filters.
empty-search-title = No match
empty-search-text = Try a name prefix, the full phone number or the hospital id.
empty-no-visits = No visits recorded yet.
empty-audit = No entries match.
empty-tokens = No API tokens yet.

segment-champions = Champions
segment-loyal = Loyal
segment-potential-loyalist = Potential loyalists
segment-new = New
segment-need-attention = Need attention
segment-about-to-sleep = About to sleep
segment-at-risk = At risk
segment-hibernating = Hibernating
segment-lost = Lost

search-label = Search patients
search-placeholder = Name, phone or hospital id
search-hint = Results update as you type.
filter-segment = Segment
filter-all = All segments
filter-churn = Churn risk only
filter-apply = Apply
patients-table = Patient list
patients-count = { $count ->
    [one] { $n } patient
   *[other] { $n } patients
}
col-name = Name
col-patient-id = Hospital id
col-sex-age = Sex · age
col-phone = Phone
col-last-visit = Last visit
col-visits = Visits
col-monetary = Spend
col-segment = Segment
pager-label = Pages
pager-prev = Previous
pager-next = Next
pager-older = Older entries
pager-page = Page { $page }
masked-badge = Masked
masked-text = Contact details are masked for your role.
badge-churn-risk = Churn risk
sex-m = Male
sex-f = Female
age-years = { $count ->
    [one] { $n } year
   *[other] { $n } years
}
days-ago = { $count ->
    [0] today
    [one] { $n } day ago
   *[other] { $n } days ago
}
visits-count = { $count ->
    [one] { $n } visit
   *[other] { $n } visits
}

patient-erased = Erased on request
patient-unnamed = (no name)
patient-profile = Profile
patient-scores = Scores
patient-timeline = Visits
patient-consent = Consent
patient-departments = Departments
patient-household = Household
patient-more-visits = Showing the latest visits only.
patient-visit-recorded = Visit recorded.
patient-consent-recorded = Consent decision recorded.
field-phone = Phone
field-email = Email
field-national-id = National id
field-birth = Born
field-district = District
field-source = Source
field-registered = Registered
field-preferred-channel = Preferred channel
field-preferred-language = Preferred language
field-notes = Notes
stat-visits = Visits
stat-monetary = Total spend
stat-first-visit = First visit
stat-last-visit = Last visit
stat-recency = Last seen
score-r = Recency (R)
score-f = Frequency (F)
score-m = Monetary (M)
score-p-alive = P(active)
score-expected-visits = Expected visits, 90 days
score-clv = Value, 12 months
score-refreshed = Scores refreshed { $at }.
score-none = No scores yet: they are computed nightly for patients with visits.
department-none = No department

action-record-visit = Record a visit
action-save-visit = Save visit
action-record-consent = Record a decision
visit-date = Date
visit-kind = Kind
visit-department = Department
visit-amount = Amount (CNY)
visit-amount-hint = For example 120.50
visit-id = Visit id
kind-outpatient = Outpatient
kind-inpatient = Inpatient
kind-exam = Examination
kind-checkup = Check-up
kind-telehealth = Telehealth

consent-channel = Channel
consent-purpose = Purpose
consent-state = Decision
consent-since = Since
consent-granted = Granted
consent-withdrawn = Withdrawn
consent-none = Not asked
consent-decision = Decision
consent-source = How it was obtained
consent-note = Note
consent-history = History
channel-sms = SMS
channel-email = Email
channel-wechat = WeChat
channel-phone = Phone call
purpose-care = Care messages
purpose-marketing = Marketing

audit-subtitle = Every read of a patient record, every change, export and erasure, and every refused access.
audit-at = Time
audit-actor = Who
audit-action = Action
audit-subject = Subject
audit-outcome = Outcome
audit-detail = Detail
audit-patient = Patient id

users-subtitle = Staff accounts and their roles. Accounts are deactivated, never deleted.
users-login = Login
users-name = Name
users-role = Role
users-status = Status
users-created-on = Created
users-active = Active
users-inactive = Deactivated
users-locked = Locked
users-new = New account
users-password = Initial password
users-create = Create account
users-created = Account created.
users-deactivate = Deactivate
users-deactivated = Account deactivated; its sessions ended.
users-confirm-deactivate = Deactivate this account? Its sessions end at once.
users-last-admin = The last active administrator cannot be deactivated.

tokens-subtitle = Tokens let hospital systems call the API. Each has a role like a staff account.
tokens-name = Name
tokens-made = Created
tokens-new = New token
tokens-create = Create token
tokens-created = Token created.
tokens-copy-now = Copy the token now
tokens-shown-once = It is shown only this once; the server keeps only its hash.
tokens-revoke = Revoke
tokens-revoked = Token revoked.
tokens-revoked-at = Revoked { $at }
tokens-confirm-revoke = Revoke this token? Systems using it stop working at once.

settings-signed-in-as = Signed in as
settings-language = Language
settings-language-browser = Follow my browser
settings-language-saved = Language saved.
settings-password = Password
settings-current-password = Current password
settings-new-password = New password
settings-confirm-password = Repeat the new password
settings-password-hint = At least 12 characters, not your login.
settings-change-password = Change password
settings-password-changed = Password changed; your other sessions were ended.
settings-password-mismatch = The two new passwords differ.

## Membership
nav-membership = Membership
membership-tabs-label = Membership sections
membership-tab-members = Members
membership-tab-tiers = Tiers
membership-tab-rules = Earning rules
membership-tab-rewards = Rewards
membership-tab-referrals = Referrals
planned-badge = Coming soon
membership-planned-rules = Earning rules decide how many points each visit earns, by fee category, tier and campaign. They will be managed here.
membership-planned-rewards = The rewards catalogue, with the points each reward costs and its stock, will be managed here.
membership-planned-referrals = The referral funnel (invited, registered, first visit, rewarded) will be shown here.
membership-planned-note = This section is being built; no figures are shown until it works on real data.
membership-figures-at = Figures as of { $at }
membership-members = Members
membership-liability = Points liability
membership-search-label = Find a member
membership-search-hint = Card number, hospital id, phone or the start of the name
membership-filter-tier = Tier
membership-filter-status = Status
membership-table = Members
membership-empty-title = No members here
membership-empty-text = No member matches these filters. Enrol a patient from the form or from their 360° page.
membership-empty-search = None of the patients found is a member.
membership-enrol = Enrol a patient
membership-enrol-patient = Hospital id of the patient
membership-enrol-hint = The patient starts in the lowest tier with no points.
pager-first = First page
points-count = { $count ->
    [one] { $n } point
   *[other] { $n } points
}
tier-standard = Standard
tier-silver = Silver
tier-gold = Gold
tier-platinum = Platinum
tier-from = from { $tier }
tier-change-enrolled = enrolled
tier-change-upgrade = upgraded
tier-change-downgrade = downgraded
tier-change-reassigned = reassigned
member-status-active = Active
member-status-suspended = Suspended
member-status-closed = Closed
member-type = Membership type
member-type-individual = Individual
member-type-family = Family
member-type-corporate = Corporate
member-type-vip-card = VIP card
member-card-title = Membership
member-card-no = Card number
member-tier = Tier
member-status = Status
member-joined = member since { $date }
member-joined-col = Joined
member-available = Available points
member-qualifying = Qualifying (12 months)
member-lifetime = Lifetime points
member-progress = Progress to the next tier
member-next-tier = { $count ->
    [one] { $points } qualifying point to { $tier }
   *[other] { $points } qualifying points to { $tier }
}
member-top-tier = Highest tier reached
member-ledger = Recent points entries
member-ledger-empty = No points entries yet.
member-ledger-more = Older entries are in the member's full ledger.
member-tier-history = Tier history
member-not-enrolled = This patient is not a member.
member-enrolled = The patient is now a member.
member-earned = Points added.
member-redeemed = Points redeemed.
member-adjusted = Adjustment recorded.
member-error-no-patient = No patient has this hospital id.
member-error-already = This patient is already a member.
member-error-insufficient = Not enough points: only { $available } available. Nothing was changed.
member-error-inactive = Only active memberships earn and redeem points.
member-error-key-reused = This form was already used for another entry. Reload the page and try again.
member-error-points = Enter a whole number of points from 1 to 100,000,000.
member-error-reason = Say why, in 1 to 500 characters.
action-enrol = Enrol as member
action-points = Earn or redeem
action-adjust = Adjust points
points-kind = Entry
points-amount = Points
points-hint = Available now: { $available }
points-reason = Reason
points-submit = Record points
adjust-delta = Points to add or remove
adjust-hint = Use a minus sign to remove points, e.g. -200. Adjustments never count towards tiers.
adjust-submit = Record adjustment
ledger-at = When
ledger-kind = Entry
ledger-points = Points
ledger-balance = Balance
ledger-by = By
ledger-by-system = system
ledger-kind-earn = Earn
ledger-kind-redeem = Redeem
ledger-kind-expire = Expiry
ledger-kind-adjust = Adjustment
ledger-kind-reverse = Reversal
chart-tiers-title = Members per tier
tiers-heading = Tier definitions
tiers-explain = Qualifying points are those earned over the last 12 months. Lower thresholds promote members at once; higher ones move members down only at their membership anniversary.
tiers-name = Tier
tiers-threshold = Qualifying points
tiers-members = Members
tiers-discounts = Discounts
tiers-perks = Benefits
tiers-save = Save tiers
tiers-confirm = Every member will be re-evaluated against the new definitions. Save?
tiers-saved = { $moved ->
    [one] Tiers saved. { $evaluated } members re-evaluated, { $moved_n } moved to another tier.
   *[other] Tiers saved. { $evaluated } members re-evaluated, { $moved_n } moved to another tier.
}
tiers-error-name = enter a name of 1 to 50 characters.
tiers-error-threshold = enter a whole number of points, 0 or more.
tiers-error-discount = enter a discount from 0 to 100 %, at most two decimals.
tiers-error-order = Thresholds must rise with the tiers, starting at 0 for the lowest.
fee-registration = Registration
fee-examination = Examination
fee-treatment = Treatment
fee-hospitalisation = Hospitalisation
fee-check-up = Check-up
perk-priority-lane = Priority lane
perk-exclusive-doctor = Dedicated doctor
perk-home-visits = Home visits
perk-free-annual-check-up = Free annual check-up
