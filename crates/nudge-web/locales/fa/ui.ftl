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
dashboard-period = بازه
period-24h = ۲۴ ساعت
period-7d = ۷ روز
period-30d = ۳۰ روز
stat-events-per-minute = رویداد در دقیقه
stat-sent = پیام‌های فرستاده‌شده
stat-delivered = تحویل‌شده
stat-opened = بازشده
stat-clicked = کلیک‌شده
stat-conversions = تبدیل‌ها
stat-revenue = درآمد
dashboard-rate = { $percent }٪ از فرستاده‌ها
chart-messages-sent = پیام‌های فرستاده‌شده
chart-revenue = درآمد در هدف سفرها
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
