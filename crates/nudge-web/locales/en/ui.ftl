# Nudge web UI — English (the reference catalogue: every other language has exactly these messages).

nav-label = Main
nav-dashboard = Dashboard
nav-contacts = Contacts
nav-settings = Settings
language = Language
language-apply = Apply
sign-out = Sign out
back-to-dashboard = Back to the dashboard
next-page = Next page

role-owner = Owner
role-marketer = Marketer
role-analyst = Analyst

field-email = E-mail address
field-password = Password

sign-in-title = Sign in
sign-in-button = Sign in
sign-in-wrong = Wrong e-mail address or password.
sign-in-locked = Too many failed sign-ins. Try again in { $minutes } min.
sign-in-no-users = This workspace has no users yet. Open the setup link that `nudge serve` printed.
setup-title = Set up your workspace
setup-intro = Create the owner account. The owner can invite marketers and analysts later.
setup-button = Create owner and sign in
setup-used = This setup link has been used or replaced. Run `nudge serve` again for a new one, or sign in.

error-not-found = Not found
error-forbidden = Not allowed
error-bad-request = Something in the request is wrong
error-internal = Something went wrong
error-internal-detail = The server could not do this. The details are in the server log.
error-csrf = This form expired or came from another site. Reload the page and try again.
error-no-page = There is no page at this address.
error-too-large = The form is too large.

dashboard-title = Your workspace
stat-contacts = Contacts
dashboard-live-journeys = Live journeys
dashboard-no-live-journeys = No journey is live.
dashboard-channels = Channels
dashboard-no-channels = No channel is configured: messages cannot be sent.
dashboard-period = Period
period-24h = 24 hours
period-7d = 7 days
period-30d = 30 days
stat-events-per-minute = Events per minute
stat-sent = Messages sent
stat-delivered = Delivered
stat-opened = Opened
stat-clicked = Clicked
stat-conversions = Conversions
stat-revenue = Revenue
dashboard-rate = { $percent }% of sent
chart-messages-sent = Messages sent
chart-revenue = Revenue at journey goals
channel-ok = answers
channel-down = does not answer

column-id = Id
column-name = Name
column-user-id = User id
column-phone = Phone
column-created = Created
column-last-seen = Last seen
column-journey = Journey
column-entered = Entered
column-active = Active
column-conversions = Conversions
column-revenue = Revenue
column-segment = Segment
column-entered-at = Entered
column-exited-at = Left
column-status = Status
column-step = Step
column-channel = Channel
column-template = Template
column-subject = Subject
column-state = State
column-role = Role

contacts-title = Contacts
contacts-count = { $count ->
    [one] { $n } contact
   *[other] { $n } contacts
}
contacts-search = Search
contacts-search-placeholder = e-mail, user id or phone
contacts-trait = Trait
contacts-trait-value = equals
contacts-search-button = Search
contacts-none = No contact matches.
contacts-bad-cursor = This page link is not valid; showing the first page.
contact-not-found = There is no contact { $id }.

profile-identities = Identities
profile-alias = Alias
profile-anonymous-id = Anonymous id
profile-lead-score = Lead score
profile-traits = Traits
profile-no-traits = No traits yet.
profile-subscriptions = Subscriptions
profile-no-subscriptions = No subscription choices recorded.
subscription-subscribed = subscribed
subscription-unsubscribed = unsubscribed
subscription-pending = waiting for confirmation
profile-segments = Segments
profile-no-segments = Not in any segment.
profile-member-now = member now
profile-runs = Journeys
profile-no-runs = Not in any journey.
run-active = active
run-finished = finished ({ $reason })
run-set-aside = set aside
profile-messages = Messages
profile-no-messages = No message yet.
profile-timeline = Timeline
profile-no-events = No events yet.
event-no-properties = No properties.
event-context = Context
timeline-older = Older events

users-title = Users
users-you = you
users-change-role = Change
users-delete = Delete
users-delete-confirm = Delete this user? They will be signed out everywhere.
users-add = Add a user
users-create = Create user
users-bad-role = Choose owner, marketer or analyst.
