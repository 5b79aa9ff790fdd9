# رابط وب Nudge — فارسی

nav-label = اصلی
nav-dashboard = پیشخوان
nav-contacts = مخاطبان
nav-settings = تنظیمات
language = زبان
language-apply = اعمال
sign-out = خروج
back-to-dashboard = بازگشت به پیشخوان
next-page = صفحهٔ بعد

role-owner = مالک
role-marketer = بازاریاب
role-analyst = تحلیلگر

field-email = نشانی ایمیل
field-password = گذرواژه

sign-in-title = ورود
sign-in-button = ورود
sign-in-wrong = نشانی ایمیل یا گذرواژه نادرست است.
sign-in-locked = تلاش‌های ناموفق زیادی برای ورود انجام شده است. { $minutes } دقیقهٔ دیگر دوباره امتحان کنید.
sign-in-no-users = این فضای کاری هنوز کاربری ندارد. پیوند راه‌اندازی‌ای را که `nudge serve` چاپ کرد باز کنید.
setup-title = راه‌اندازی فضای کاری
setup-intro = حساب مالک را بسازید. مالک بعداً می‌تواند بازاریاب‌ها و تحلیلگران را دعوت کند.
setup-button = ساختن مالک و ورود
setup-used = این پیوند راه‌اندازی استفاده یا جایگزین شده است. برای پیوند تازه دوباره `nudge serve` را اجرا کنید، یا وارد شوید.

error-not-found = پیدا نشد
error-forbidden = مجاز نیست
error-bad-request = چیزی در درخواست نادرست است
error-internal = مشکلی پیش آمد
error-internal-detail = سرور نتوانست این کار را انجام دهد. جزئیات در گزارش سرور است.
error-csrf = این فرم منقضی شده یا از سایت دیگری آمده است. صفحه را دوباره بارگیری کنید و دوباره امتحان کنید.
error-no-page = در این نشانی صفحه‌ای نیست.
error-too-large = فرم بیش از حد بزرگ است.

dashboard-title = فضای کاری شما
stat-contacts = مخاطبان
dashboard-live-journeys = سفرهای فعال
dashboard-no-live-journeys = هیچ سفری فعال نیست.
dashboard-channels = کانال‌ها
dashboard-no-channels = هیچ کانالی پیکربندی نشده است: پیام‌ها فرستاده نمی‌شوند.
channel-ok = پاسخ می‌دهد
channel-down = پاسخ نمی‌دهد

column-id = شناسه
column-name = نام
column-user-id = شناسهٔ کاربر
column-phone = تلفن
column-created = ایجاد
column-last-seen = آخرین بازدید
column-journey = سفر
column-entered = واردشده
column-active = فعال
column-conversions = تبدیل‌ها
column-revenue = درآمد
column-segment = بخش
column-entered-at = ورود
column-exited-at = خروج
column-status = وضعیت
column-step = گام
column-channel = کانال
column-template = قالب
column-subject = موضوع
column-state = حالت
column-role = نقش

contacts-title = مخاطبان
contacts-count = { $count ->
    [one] { $n } مخاطب
   *[other] { $n } مخاطب
}
contacts-search = جستجو
contacts-search-placeholder = ایمیل، شناسهٔ کاربر یا تلفن
contacts-trait = ویژگی
contacts-trait-value = برابر با
contacts-search-button = جستجو
contacts-none = هیچ مخاطبی پیدا نشد.
contacts-bad-cursor = پیوند این صفحه معتبر نیست؛ صفحهٔ نخست نشان داده می‌شود.
contact-not-found = مخاطب { $id } وجود ندارد.

profile-identities = شناسه‌ها
profile-alias = نام مستعار
profile-anonymous-id = شناسهٔ ناشناس
profile-lead-score = امتیاز سرنخ
profile-traits = ویژگی‌ها
profile-no-traits = هنوز ویژگی‌ای ندارد.
profile-subscriptions = اشتراک‌ها
profile-no-subscriptions = انتخابی برای اشتراک ثبت نشده است.
subscription-subscribed = مشترک
subscription-unsubscribed = لغو اشتراک
subscription-pending = در انتظار تأیید
profile-segments = بخش‌ها
profile-no-segments = در هیچ بخشی نیست.
profile-member-now = اکنون عضو
profile-runs = سفرها
profile-no-runs = در هیچ سفری نیست.
run-active = فعال
run-finished = پایان‌یافته ({ $reason })
run-set-aside = کنار گذاشته‌شده
profile-messages = پیام‌ها
profile-no-messages = هنوز پیامی ندارد.
profile-timeline = خط زمانی
profile-no-events = هنوز رویدادی ندارد.
event-no-properties = بدون ویژگی.
event-context = زمینه
timeline-older = رویدادهای قدیمی‌تر

users-title = کاربران
users-you = شما
users-change-role = تغییر
users-delete = حذف
users-delete-confirm = این کاربر حذف شود؟ از همه‌جا خارج خواهد شد.
users-add = افزودن کاربر
users-create = ساختن کاربر
users-bad-role = مالک، بازاریاب یا تحلیلگر را انتخاب کنید.

## Segments (list, segment page, builder)

nav-segments = بخش‌ها
segments-title = بخش‌ها
segments-none = هنوز بخشی ندارید. یکی بسازید یا یک بخش آماده را از پایین نصب کنید.
segments-new = بخش تازه
column-size = اعضا
column-trend = ۳۰ روز گذشته
column-updated = به‌روزرسانی
segments-administrative = مدیریتی
segments-ready-made = بخش‌های آماده
segments-ready-made-intro = بخش‌های رایج یک فروشگاه اینترنتی، آماده‌ی استفاده. نصب هر کدام یک بخش معمولی می‌سازد که می‌توانید تغییرش دهید.
segments-install = نصب
segments-installed = نصب‌شده
segment-not-found = بخش { $id } وجود ندارد.
segment-definition = تعریف
segment-size-over-time = اندازه در گذر زمان
segment-size-now = { $count ->
    [one] اکنون { $n } عضو
   *[other] اکنون { $n } عضو
}
segment-members = اعضا
segment-no-members = هیچ مخاطبی در این بخش نیست.
segment-edit = ویرایش
segment-delete = حذف
segment-delete-confirm = این بخش حذف شود؟ تاریخچه‌ی عضویتش هم حذف می‌شود.
segment-description = توضیح
segment-version = نسخه‌ی { $n }
segment-administrative-note = مدیریتی: اعضای آن از همه‌ی بخش‌های دیگر کنار گذاشته می‌شوند.
segment-empty-and = همه
segment-empty-or = هیچ‌کس

builder-new-title = بخش تازه
builder-edit-title = ویرایش بخش
builder-name = نام
builder-description = توضیح
builder-administrative = بخش مدیریتی (مخاطبان آزمایشی، کارمندان): از همه‌ی بخش‌های دیگر کنار گذاشته می‌شود
builder-conditions = شرط‌ها
builder-view-form = فرم
builder-view-json = JSON
builder-json-label = تعریف به صورت JSON (راهنمای بخش‌ها را ببینید)
builder-save = ذخیره‌ی بخش
builder-cancel = انصراف
builder-update = به‌روزرسانی
builder-add = افزودن
builder-add-condition = افزودن شرط
builder-remove = حذف
builder-negate = نقیض
builder-group = گروه
builder-unwrap = برداشتن گروه
builder-remove-not = برداشتن «نه»
builder-add-filter = افزودن فیلتر ویژگی
builder-remove-filter = حذف فیلتر
builder-where = که
builder-not-label = هیچ‌یک از این‌ها برقرار نیست:
builder-group-all = همه‌ی این‌ها برقرار است
builder-group-any = دست‌کم یکی از این‌ها برقرار است
builder-problems = چند شرط نیاز به اصلاح دارد؛ در پایین مشخص شده‌اند.
builder-read-only = نقش شما می‌تواند بخش‌ها را اینجا بررسی کند، ولی نمی‌تواند ذخیره کند.
builder-preview = پیش‌نمایش زنده
builder-preview-count = { $count ->
    [one] { $n } مخاطب مطابقت دارد
   *[other] { $n } مخاطب مطابقت دارند
}
builder-preview-sample = چند نمونه
builder-preview-incomplete = شرط‌های مشخص‌شده را کامل کنید تا ببینید چه کسانی مطابقت دارند.
builder-preview-none = هنوز هیچ مخاطبی مطابقت ندارد.
builder-error-required = این را پر کنید.
builder-error-choose = یکی از گزینه‌ها را انتخاب کنید.
builder-error-number = یک عدد بنویسید، مانند ۱۲ یا ۱۲٫۵.
builder-error-whole = یک عدد صحیح بنویسید، مانند ۷.
builder-error-date = تاریخ را به شکل 2026-12-31 (یا 2026-12-31T18:00:00Z) بنویسید.
builder-error-percent = یک عدد صحیح از ۰ تا ۱۰۰ بنویسید.
builder-error-not-one = «نه» دقیقاً یک شرط دارد.
builder-error-json = JSON معتبر نیست: { $error }

field-trait = ویژگی
field-operator = عملگر
field-value = مقدار
field-values-hint = الف، ب، پ
field-date-hint = 2026-12-31
field-event = رویداد
field-count = دفعات
field-window = زمان
field-days = روز
field-hours = ساعت
field-from = از
field-to = تا
field-property = ویژگی رویداد
field-which = کدام بار
field-function = تجمیع
field-channel = کانال
field-any-channel = هر کانالی
field-state = وضعیت
field-percent = درصد
field-salt = نمک (اختیاری)
field-segment = بخش
field-action = کنش
field-template = شناسه‌ی قالب (اختیاری)
field-choose = انتخاب کنید…

kind-and = همه‌ی این‌ها (و)
kind-or = یکی از این‌ها (یا)
kind-not = نه
kind-trait = ویژگی
kind-event = انجام یک رویداد
kind-event_time = زمان آخرین/نخستین رویداد
kind-aggregate = جمع یا میانگین یک ویژگی رویداد
kind-subscription = اشتراک
kind-segment = عضو بخش دیگر
kind-message = تعامل با پیام
kind-lead_score = امتیاز سرنخ
kind-random_bucket = سهم تصادفی

op-equals = برابر است با
op-not_equals = برابر نیست با
op-greater_than = بزرگ‌تر است از
op-greater_or_equal = دست‌کم است
op-less_than = کوچک‌تر است از
op-less_or_equal = حداکثر است
op-contains = شامل است
op-starts_with = شروع می‌شود با
op-exists = وجود دارد
op-not_exists = وجود ندارد
op-in = یکی از این‌هاست
op-not_in = هیچ‌یک از این‌ها نیست
op-before = پیش از
op-after = پس از
op-within_last_days = در … روز گذشته است
op-within_next_days = در … روز آینده است
op-anniversary_within_days = سالگردش در … روز آینده است
op-anniversary_this_month = سالگردش در همین ماه است

time-within_last_days = در … روز گذشته
time-not_within_last_days = بیش از … روز پیش
time-within_last_hours = در … ساعت گذشته
time-not_within_last_hours = بیش از … ساعت پیش
time-before = پیش از
time-after = پس از

num-greater_or_equal = ≥
num-greater_than = >
num-equals = =
num-less_or_equal = ≤
num-less_than = <

count-at_least = دست‌کم
count-at_most = حداکثر
count-exactly = دقیقاً
count-times = بار

window-ever = در هر زمان
window-last_days = در … روز گذشته
window-last_hours = در … ساعت گذشته
window-between = میان دو تاریخ

which-last = آخرین بار
which-first = نخستین بار

function-sum = جمع
function-avg = میانگین
function-min = کمترین
function-max = بیشترین
function-count = شمار رویدادها

state-subscribed = مشترک
state-unsubscribed = لغو اشتراک
state-pending = در انتظار تأیید
state-unknown = انتخابی ثبت نشده

action-received = دریافت کرد
action-delivered = تحویل شد
action-opened = باز کرد
action-clicked = کلیک کرد
action-bounced = برگشت خورد
action-failed = ناموفق بود

summary-event = انجام داد
summary-where = که
summary-aggregate-of = در
summary-member-of = عضو بخش است
summary-subscription = در
summary-message = یک پیام
summary-template = قالب
summary-percent = سهم تصادفی
summary-lead-score = امتیاز سرنخ
summary-days = روز
summary-hours = ساعت
