# واجهة Nudge على الويب — العربية

nav-label = الرئيسية
nav-dashboard = لوحة التحكم
nav-contacts = جهات الاتصال
nav-settings = الإعدادات
language = اللغة
language-apply = تطبيق
sign-out = تسجيل الخروج
back-to-dashboard = العودة إلى لوحة التحكم
next-page = الصفحة التالية

role-owner = مالك
role-marketer = مسوّق
role-analyst = محلّل

field-email = عنوان البريد الإلكتروني
field-password = كلمة المرور

sign-in-title = تسجيل الدخول
sign-in-button = دخول
sign-in-wrong = عنوان البريد الإلكتروني أو كلمة المرور غير صحيحة.
sign-in-locked = محاولات دخول فاشلة كثيرة. حاول مرة أخرى بعد { $minutes } دقيقة.
sign-in-no-users = لا يوجد مستخدمون في مساحة العمل هذه بعد. افتح رابط الإعداد الذي طبعه `nudge serve`.
setup-title = إعداد مساحة العمل
setup-intro = أنشئ حساب المالك. يستطيع المالك لاحقًا دعوة المسوّقين والمحلّلين.
setup-button = إنشاء المالك وتسجيل الدخول
setup-used = استُخدم رابط الإعداد هذا أو استُبدل. شغّل `nudge serve` مرة أخرى للحصول على رابط جديد، أو سجّل الدخول.

error-not-found = غير موجود
error-forbidden = غير مسموح
error-bad-request = في الطلب خطأ ما
error-internal = حدث خطأ
error-internal-detail = تعذّر على الخادم تنفيذ ذلك. التفاصيل في سجل الخادم.
error-csrf = انتهت صلاحية هذا النموذج أو جاء من موقع آخر. أعد تحميل الصفحة وحاول مرة أخرى.
error-no-page = لا توجد صفحة بهذا العنوان.
error-too-large = النموذج كبير جدًا.

dashboard-title = مساحة عملك
stat-contacts = جهات الاتصال
dashboard-live-journeys = الرحلات النشطة
dashboard-no-live-journeys = لا توجد رحلة نشطة.
dashboard-channels = القنوات
dashboard-no-channels = لم تُهيّأ أي قناة: لا يمكن إرسال الرسائل.
dashboard-period = الفترة
period-24h = ٢٤ ساعة
period-7d = ٧ أيام
period-30d = ٣٠ يومًا
stat-events-per-minute = أحداث في الدقيقة
stat-sent = الرسائل المرسلة
stat-delivered = المسلَّمة
stat-opened = المفتوحة
stat-clicked = المنقور عليها
stat-conversions = التحويلات
stat-revenue = الإيرادات
dashboard-rate = { $percent }٪ من المرسلة
chart-messages-sent = الرسائل المرسلة
chart-revenue = الإيرادات عند أهداف الرحلات
channel-ok = تستجيب
channel-down = لا تستجيب

column-id = المعرّف
column-name = الاسم
column-user-id = معرّف المستخدم
column-phone = الهاتف
column-created = الإنشاء
column-last-seen = آخر ظهور
column-journey = الرحلة
column-entered = الداخلون
column-active = النشطون
column-conversions = التحويلات
column-revenue = الإيرادات
column-segment = الشريحة
column-entered-at = الدخول
column-exited-at = الخروج
column-status = الحالة
column-step = الخطوة
column-channel = القناة
column-template = القالب
column-subject = الموضوع
column-state = الوضع
column-role = الدور

contacts-title = جهات الاتصال
contacts-count = { $count ->
    [zero] { $n } جهة اتصال
    [one] جهة اتصال واحدة
    [two] جهتا اتصال
    [few] { $n } جهات اتصال
    [many] { $n } جهة اتصال
   *[other] { $n } جهة اتصال
}
contacts-search = بحث
contacts-search-placeholder = البريد الإلكتروني أو معرّف المستخدم أو الهاتف
contacts-trait = السمة
contacts-trait-value = تساوي
contacts-search-button = بحث
contacts-none = لا توجد جهة اتصال مطابقة.
contacts-bad-cursor = رابط هذه الصفحة غير صالح؛ تُعرض الصفحة الأولى.
contact-not-found = لا توجد جهة الاتصال { $id }.

profile-identities = المعرّفات
profile-alias = اسم بديل
profile-anonymous-id = معرّف مجهول
profile-lead-score = نقاط العميل المحتمل
profile-traits = السمات
profile-no-traits = لا سمات بعد.
profile-subscriptions = الاشتراكات
profile-no-subscriptions = لم تُسجَّل اختيارات اشتراك.
subscription-subscribed = مشترك
subscription-unsubscribed = ألغى الاشتراك
subscription-pending = بانتظار التأكيد
profile-segments = الشرائح
profile-no-segments = ليس في أي شريحة.
profile-member-now = عضو الآن
profile-runs = الرحلات
profile-no-runs = ليس في أي رحلة.
run-active = نشطة
run-finished = منتهية ({ $reason })
run-set-aside = موضوعة جانبًا
profile-messages = الرسائل
profile-no-messages = لا رسائل بعد.
profile-timeline = الخط الزمني
profile-no-events = لا أحداث بعد.
event-no-properties = بلا خصائص.
event-context = السياق
timeline-older = أحداث أقدم

users-title = المستخدمون
users-you = أنت
users-change-role = تغيير
users-delete = حذف
users-delete-confirm = حذف هذا المستخدم؟ سيُسجَّل خروجه من كل مكان.
users-add = إضافة مستخدم
users-create = إنشاء المستخدم
users-bad-role = اختر مالكًا أو مسوّقًا أو محلّلًا.

# القوالب
nav-templates = القوالب
templates-title = القوالب
template-new-email = بريد إلكتروني جديد
template-new-sms = رسالة نصية جديدة
template-new-push = إشعار جديد
template-new-webhook = خطاف ويب جديد
templates-none = لا قوالب بعد.
template-topic = موضوع الاشتراك
column-version = الإصدار
column-updated = التحديث
template-transactional-badge = معاملاتي
template-new = قالب جديد
template-version = الإصدار { $version }
template-versions = الإصدارات
template-delete = حذف
template-delete-confirm = حذف هذا القالب وكل إصداراته؟
template-saved = حُفظ كإصدار جديد.
template-description = الوصف
template-transactional = معاملاتي (يُرسل حتى لمن ألغى اشتراكه في التسويق)
template-subject = الموضوع
template-preheader = النص التمهيدي
template-from = المرسل
template-reply-to = الرد إلى
template-body = المحتوى
template-text = نص عادي
template-text-hint = يُنشأ من HTML إذا كان فارغًا
template-message = الرسالة
template-title = العنوان
template-url = الرابط
template-method = الطريقة
template-headers = الترويسات (سطر لكل «الاسم: القيمة»)
template-request-body = جسم الطلب
template-preview-as = معاينة باسم
template-preview-contact = جهة اتصال (بريد أو معرّف مستخدم أو ‎#معرّف)؛ البيانات النموذجية أدناه إذا كان فارغًا
template-sample = بيانات جهة اتصال نموذجية (JSON)
template-save = حفظ
template-preview-button = معاينة
template-preview = المعاينة
template-desktop = سطح المكتب
template-mobile = الجوال
template-diff-previous = التغييرات عن الإصدار السابق
template-compare = قارن
template-with = مع
template-show-diff = اعرض التغييرات
template-not-found = لا يوجد القالب { $id }.
template-no-version = لا يوجد هذا الإصدار.
template-error-line = السطر { $line }: { $message }
template-sample-not-json = بيانات جهة الاتصال النموذجية ليست كائن JSON.
template-sms-chars = { $chars } حرفًا، { $segments } رسالة نصية
template-no-contact = لا توجد جهة الاتصال { $who }.
