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

## Segments (list, segment page, builder)

nav-segments = Segments
segments-title = Segments
segments-none = No segment yet. Build one, or install a ready-made segment below.
segments-new = New segment
column-size = Members
column-trend = Last 30 days
column-updated = Updated
segments-administrative = administrative
segments-ready-made = Ready-made segments
segments-ready-made-intro = Common segments of an online shop, ready to use. Installing one creates an ordinary segment you can change.
segments-install = Install
segments-installed = installed
segment-not-found = There is no segment { $id }.
segment-definition = Definition
segment-size-over-time = Size over time
segment-size-now = { $count ->
    [one] { $n } member now
   *[other] { $n } members now
}
segment-members = Members
segment-no-members = No contact is in this segment.
segment-edit = Edit
segment-delete = Delete
segment-delete-confirm = Delete this segment? Its membership history goes with it.
segment-description = Description
segment-version = Version { $n }
segment-administrative-note = Administrative: its members are left out of every other segment.
segment-empty-and = everyone
segment-empty-or = no one

builder-new-title = New segment
builder-edit-title = Edit segment
builder-name = Name
builder-description = Description
builder-administrative = Administrative segment (test contacts, employees): left out of every other segment
builder-conditions = Conditions
builder-view-form = Form
builder-view-json = JSON
builder-json-label = The definition as JSON (see the segments guide)
builder-save = Save segment
builder-cancel = Cancel
builder-update = Update
builder-add = Add
builder-add-condition = Add a condition
builder-remove = Remove
builder-negate = Negate
builder-group = Group
builder-unwrap = Ungroup
builder-remove-not = Remove “not”
builder-add-filter = Add a property filter
builder-remove-filter = Remove filter
builder-where = where
builder-not-label = None of this holds:
builder-group-all = All of these hold
builder-group-any = Any of these holds
builder-problems = Some conditions need attention; they are marked below.
builder-read-only = Your role can explore segments here but not save them.
builder-preview = Live preview
builder-preview-count = { $count ->
    [one] { $n } contact matches
   *[other] { $n } contacts match
}
builder-preview-sample = Some of them
builder-preview-incomplete = Finish the marked conditions to see who matches.
builder-preview-none = No contact matches yet.
builder-error-required = Fill this in.
builder-error-choose = Choose one of the options.
builder-error-number = Write a number, such as 12 or 12.5.
builder-error-whole = Write a whole number, such as 7.
builder-error-date = Write a date as 2026-12-31 (or 2026-12-31T18:00:00Z).
builder-error-percent = Write a whole number from 0 to 100.
builder-error-not-one = “Not” holds exactly one condition.
builder-error-json = The JSON is not valid: { $error }

field-trait = Trait
field-operator = Operator
field-value = Value
field-values-hint = a, b, c
field-date-hint = 2026-12-31
field-event = Event
field-count = Times
field-window = When
field-days = Days
field-hours = Hours
field-from = From
field-to = To
field-property = Property
field-which = Which time
field-function = Aggregate
field-channel = Channel
field-any-channel = any channel
field-state = State
field-percent = Percent
field-salt = Salt (optional)
field-segment = Segment
field-action = Action
field-template = Template id (optional)
field-choose = Choose…

kind-and = All of (and)
kind-or = Any of (or)
kind-not = Not
kind-trait = Trait
kind-event = Performed an event
kind-event_time = When an event last/first happened
kind-aggregate = Total or average of an event property
kind-subscription = Subscription
kind-segment = In another segment
kind-message = Message engagement
kind-lead_score = Lead score
kind-random_bucket = Random share

op-equals = equals
op-not_equals = does not equal
op-greater_than = is greater than
op-greater_or_equal = is at least
op-less_than = is less than
op-less_or_equal = is at most
op-contains = contains
op-starts_with = starts with
op-exists = exists
op-not_exists = does not exist
op-in = is one of
op-not_in = is none of
op-before = is before
op-after = is after
op-within_last_days = is within the last … days
op-within_next_days = is within the next … days
op-anniversary_within_days = has its anniversary within … days
op-anniversary_this_month = has its anniversary this month

time-within_last_days = within the last … days
time-not_within_last_days = more than … days ago
time-within_last_hours = within the last … hours
time-not_within_last_hours = more than … hours ago
time-before = before
time-after = after

num-greater_or_equal = ≥
num-greater_than = >
num-equals = =
num-less_or_equal = ≤
num-less_than = <

count-at_least = at least
count-at_most = at most
count-exactly = exactly
count-times = times

window-ever = ever
window-last_days = in the last … days
window-last_hours = in the last … hours
window-between = between two dates

which-last = last time
which-first = first time

function-sum = sum of
function-avg = average of
function-min = smallest
function-max = largest
function-count = number of events

state-subscribed = subscribed
state-unsubscribed = unsubscribed
state-pending = waiting for confirmation
state-unknown = no choice recorded

action-received = received
action-delivered = was delivered
action-opened = opened
action-clicked = clicked
action-bounced = bounced
action-failed = failed

summary-event = performed
summary-where = where
summary-aggregate-of = of
summary-member-of = is in segment
summary-subscription = on
summary-message = a message
summary-template = template
summary-percent = random share of
summary-lead-score = lead score
summary-days = days
summary-hours = hours
