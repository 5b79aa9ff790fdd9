// Checks that Segment's official Node.js library (@segment/analytics-node) works
// against a running Nudge server.
//
// Run by crates/nudge/tests/sdk.rs (install the library with scripts/install-test-deps).
// Environment:
//   NUDGE_URL        base URL of the server, e.g. http://127.0.0.1:8080
//   NUDGE_WRITE_KEY  a write key registered on it (tracking API, HTTP Basic username)
//   NUDGE_ADMIN_KEY  an admin key registered on it (admin API, Bearer)
//   RUN_ID           unique per run; all ids the script sends are derived from it
//
// The story, sent in the library's normal batching mode (everything goes through
// `/v1/batch`, several messages per request):
//   1. a legacy account OLD identifies with its own traits and has an event;
//   2. an anonymous visitor A views a page and tracks events;
//   3. A identifies as user U (traits);
//   4. U tracks events (nested objects, an explicit Date timestamp), a screen, a
//      group, and identifies again (a `null` trait removes that trait);
//   5. alias({ previousId: OLD, userId: U }) merges the legacy account into U.
// Then, through the admin API, every call must be one event on U's timeline with the
// right type, name and body; U's traits are the merge of both identifies and of OLD's;
// A and OLD resolve to U; the library emitted no error. Exits 1 with the list of
// mismatches otherwise.

import { Analytics } from '@segment/analytics-node'
import { readFileSync } from 'node:fs'

function env(name) {
  const value = process.env[name]
  if (!value) {
    console.error(`sdk-test.mjs: environment variable ${name} is required`)
    process.exit(2)
  }
  return value
}

const NUDGE_URL = env('NUDGE_URL').replace(/\/+$/, '')
const WRITE_KEY = env('NUDGE_WRITE_KEY')
const ADMIN_KEY = env('NUDGE_ADMIN_KEY')
const RUN_ID = env('RUN_ID')

const ANON = `node-anon-${RUN_ID}`
const USER = `node-user-${RUN_ID}`
const OLD = `node-legacy-${RUN_ID}`
const GROUP = `node-group-${RUN_ID}`
const EMAIL = `Ada.${RUN_ID}@Example.com`
const ORDER_TS = new Date('2024-01-02T03:04:05.000Z')
const SDK_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@segment/analytics-node/package.json', import.meta.url), 'utf8'),
).version

// --- What the library reports --------------------------------------------------------

const sdkErrors = [] // from analytics.on('error')
const httpLog = [] // { method, url, status, size }
const requestSizes = []

// flushAt: 3 makes the library send a full batch as soon as three messages are queued
// (maxEventsInBatch is its deprecated name, given the same value); the rest goes out
// on flush(). flush() between the steps keeps their order, as the library may have
// several batches in flight at once.
const analytics = new Analytics({
  writeKey: WRITE_KEY,
  host: NUDGE_URL,
  flushAt: 3,
  maxEventsInBatch: 3,
  flushInterval: 1000,
  maxRetries: 3,
  httpRequestTimeout: 10000,
})
analytics.on('error', (err) => {
  sdkErrors.push(`${err.code}: ${err.reason?.message ?? err.reason} (message ${err.ctx?.event?.messageId})`)
})
analytics.on('http_request', (req) => {
  let size = -1
  try {
    size = JSON.parse(req.body).batch.length
  } catch {}
  requestSizes.push(size)
})
analytics.on('http_response', (res) => {
  let size = -1
  try {
    size = JSON.parse(res.body).batch.length
  } catch {}
  httpLog.push({ url: res.url, status: res.status, statusText: res.statusText, size })
})

// --- The story ----------------------------------------------------------------------

const expected = [] // one object per call, in the order of the calls

/** Calls `analytics[kind](params)` and records what Nudge must show for it. */
function send(kind, check, params) {
  const want = {
    ...check,
    type: kind,
    message_id: undefined,
    user_id: params.userId ?? null,
    anonymous_id: params.anonymousId ?? null,
  }
  expected.push(want)
  analytics[kind](params, (err, ctx) => {
    want.message_id = ctx?.event?.messageId
    // A failed delivery also reaches analytics.on('error'), which records it.
  })
}

// 1. The legacy account.
const legacyTraits = { name: 'Ada (legacy account)', legacy_plan: 'basic', signup_source: 'newsletter' }
send('identify', { traits: legacyTraits }, { userId: OLD, traits: legacyTraits })
send('track', { event: 'Legacy Login', properties: { method: 'password' } },
  { userId: OLD, event: 'Legacy Login', properties: { method: 'password' } })
await analytics.flush()

// 2. The anonymous visitor.
send('page', { name: 'Pricing', properties: { path: '/pricing', referrer: 'https://search.example/', category: 'Marketing' } },
  { anonymousId: ANON, category: 'Marketing', name: 'Pricing', properties: { path: '/pricing', referrer: 'https://search.example/' } })
send('track', { event: 'Plan Viewed', properties: { plan: 'pro', price: 49.5, annual: false } },
  { anonymousId: ANON, event: 'Plan Viewed', properties: { plan: 'pro', price: 49.5, annual: false } })
send('track', { event: 'Signup Started', properties: {} }, { anonymousId: ANON, event: 'Signup Started' })
await analytics.flush()

// 3. The visitor signs up.
const firstTraits = {
  name: 'Ada Lovelace',
  email: EMAIL,
  plan: 'trial',
  temporary_flag: true,
  company: { name: 'Analytical Engines', size: 12, tags: ['math', 'engines'] },
}
send('identify', { traits: firstTraits }, { userId: USER, anonymousId: ANON, traits: firstTraits })
await analytics.flush()

// 4. The known user.
const order = {
  order_id: `order-${RUN_ID}`,
  total: 99.95,
  currency: 'EUR',
  products: [{ sku: 'bern-1', quantity: 2, price: 30 }, { sku: 'bab-2', quantity: 1, price: 39.95 }],
  shipping: { method: 'express', address: { city: 'London', postcode: 'N1 9GU' } },
  deliver_by: new Date('2024-01-05T00:00:00.000Z'),
}
send('track',
  { event: 'Order Completed', properties: { ...order, deliver_by: '2024-01-05T00:00:00.000Z' }, original_timestamp: '2024-01-02T03:04:05.000Z' },
  { userId: USER, event: 'Order Completed', properties: order, timestamp: ORDER_TS })
send('track', { event: 'Coupon Applied', properties: { code: 'WELCOME', discount: 0.1, first_order: true } },
  { userId: USER, event: 'Coupon Applied', properties: { code: 'WELCOME', discount: 0.1, first_order: true } })
send('screen', { name: 'Settings', properties: { tab: 'billing', category: 'Account' } },
  { userId: USER, category: 'Account', name: 'Settings', properties: { tab: 'billing' } })
const groupTraits = { name: 'Analytical Engines', plan: 'enterprise', employees: 12 }
send('group', { traits: groupTraits, group_id: GROUP }, { userId: USER, groupId: GROUP, traits: groupTraits })
const secondTraits = { plan: 'pro', temporary_flag: null, age: 36 }
send('identify', { traits: secondTraits }, { userId: USER, traits: secondTraits })
await analytics.flush()

// 5. The legacy account is the same person.
send('alias', { previous_id: OLD }, { previousId: OLD, userId: USER })
await analytics.closeAndFlush({ timeout: 30000 })

// --- Verification through the admin API -----------------------------------------------

async function adminGet(path, params = {}) {
  const url = new URL(`${NUDGE_URL}${path}`)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v))
  const res = await fetch(url, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } })
  const text = await res.text()
  try {
    return [res.status, JSON.parse(text)]
  } catch {
    return [res.status, text]
  }
}

/** A canonical JSON text (object keys sorted), to compare values structurally. */
function canon(value) {
  if (Array.isArray(value)) return `[${value.map(canon).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canon(value[k])}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

async function checkAll() {
  const problems = []
  const [status, contact] = await adminGet('/api/v1/contacts/lookup', { user_id: USER })
  if (status !== 200) return [`lookup user_id=${USER}: HTTP ${status} ${canon(contact)}`]
  const cid = contact.id
  const [evStatus, page] = await adminGet(`/api/v1/contacts/${cid}/events`, { limit: 500 })
  if (evStatus !== 200) return [`events of contact ${cid}: HTTP ${evStatus} ${canon(page)}`]
  const events = page.data
  if (events.length !== expected.length) {
    const seen = events.map((e) => `${e.type}:${e.event ?? e.name ?? ''}`).sort()
    problems.push(`contact ${cid} has ${events.length} events, expected exactly ${expected.length} (seen: ${seen.join(', ')})`)
  }
  const byId = new Map()
  for (const e of events) {
    if (byId.has(e.message_id)) problems.push(`message ${e.message_id} is on the timeline twice`)
    byId.set(e.message_id, e)
  }

  for (const want of expected) {
    const label = `${want.type} ${want.event ?? want.name ?? ''} (${want.message_id})`
    if (!want.message_id) {
      problems.push(`${label}: the library never reported a messageId for it`)
      continue
    }
    const got = byId.get(want.message_id)
    if (!got) {
      problems.push(`${label}: not on the timeline of contact ${cid}`)
      continue
    }
    const same = (field, actual, wanted) => {
      if (canon(actual) !== canon(wanted)) problems.push(`${label}: ${field} is ${canon(actual)}, expected ${canon(wanted)}`)
    }
    same('type', got.type, want.type)
    same('user_id', got.user_id, want.user_id)
    same('anonymous_id', got.anonymous_id, want.anonymous_id)
    if (want.type === 'track') same('event', got.event, want.event)
    if (want.type === 'page' || want.type === 'screen') same('name', got.name, want.name)
    if ('properties' in want) same('properties', got.properties, want.properties)
    if ('traits' in want) same('traits', got.traits, want.traits)
    if ('group_id' in want) same('groupId', got.groupId, want.group_id)
    if ('previous_id' in want) same('previousId', got.previousId, want.previous_id)
    same('context.library.name', got.context?.library?.name, '@segment/analytics-node')
    if ('original_timestamp' in want) {
      same('originalTimestamp', got.originalTimestamp, want.original_timestamp)
      // The server corrects for clock skew with sentAt, so the stored timestamp is
      // the sent one give or take the time the request took.
      const skew = Math.abs(Date.parse(got.timestamp) - ORDER_TS.getTime()) / 1000
      if (!(skew <= 60)) problems.push(`${label}: timestamp ${got.timestamp} is ${skew}s away from ${ORDER_TS.toISOString()}`)
    }
  }

  // The profile: both identifies merged (null removed a trait), then the legacy
  // account's traits filled in where U had none.
  const wantTraits = {
    name: 'Ada Lovelace',
    email: EMAIL,
    plan: 'pro',
    company: firstTraits.company,
    age: 36,
    legacy_plan: 'basic',
    signup_source: 'newsletter',
  }
  // The one order, kept as traits Nudge owns: counted once, its total as revenue,
  // the stored (skew-corrected) event time as first and last order.
  const storedOrders = events.filter((e) => e.type === 'track' && e.event === 'Order Completed')
  if (storedOrders.length === 1) {
    const at = storedOrders[0].timestamp
    Object.assign(wantTraits, { orders_count: 1, orders_revenue: order.total, first_order_at: at, last_order_at: at })
  } else {
    problems.push(`${storedOrders.length} Order Completed events stored, expected 1`)
  }
  if (canon(contact.traits) !== canon(wantTraits)) {
    problems.push(`contact traits are ${canon(contact.traits)}, expected ${canon(wantTraits)}`)
  }
  if (contact.user_id !== USER) problems.push(`contact user_id is ${contact.user_id}, expected ${USER}`)
  if (contact.email !== EMAIL.toLowerCase()) problems.push(`contact email is ${contact.email}, expected ${EMAIL.toLowerCase()}`)
  if (!contact.anonymous_ids.includes(ANON)) problems.push(`contact anonymous_ids ${canon(contact.anonymous_ids)} lack ${ANON}`)
  if (!contact.alias_user_ids.includes(OLD)) problems.push(`contact alias_user_ids ${canon(contact.alias_user_ids)} lack ${OLD}`)
  for (const [key, value] of [['anonymous_id', ANON], ['user_id', OLD]]) {
    const [s, other] = await adminGet('/api/v1/contacts/lookup', { [key]: value })
    if (s !== 200 || other.id !== cid) problems.push(`lookup ${key}=${value}: expected contact ${cid}, got HTTP ${s} ${canon(other)}`)
  }
  for (const user of [USER, OLD]) {
    const [s, listing] = await adminGet('/api/v1/contacts', { user_id: user })
    const ids = s === 200 ? listing.data.map((c) => c.id) : listing
    if (canon(ids) !== canon([cid])) problems.push(`list contacts user_id=${user}: expected [${cid}], got HTTP ${s} ${canon(ids)}`)
  }
  return problems
}

let problems = []
const deadline = Date.now() + 15000
for (;;) {
  problems = await checkAll()
  if (problems.length === 0 || Date.now() > deadline) break
  await new Promise((r) => setTimeout(r, 250))
}

for (const e of sdkErrors) problems.push(`the library reported an error: ${e}`)
if (httpLog.length === 0) problems.push('the library made no HTTP request')
if (requestSizes.length !== httpLog.length) {
  problems.push(`the library sent ${requestSizes.length} requests but reported ${httpLog.length} responses`)
}
for (const r of httpLog) {
  if (!r.url.endsWith('/v1/batch') || r.status !== 200) problems.push(`request to ${r.url} got HTTP ${r.status} ${r.statusText}`)
}
const carried = httpLog.reduce((n, r) => n + r.size, 0)
if (carried !== expected.length) problems.push(`the library's batches carried ${carried} messages, expected ${expected.length}`)
if (Math.max(0, ...httpLog.map((r) => r.size)) < 2) problems.push('no batch carried more than one message')

console.log(`library requests: ${canon(httpLog.map((r) => [r.status, r.size]))} ([HTTP status, messages])`)
if (problems.length) {
  console.error(`FAIL: @segment/analytics-node ${SDK_VERSION} against ${NUDGE_URL}:`)
  for (const p of problems) console.error(`  - ${p}`)
  process.exit(1)
}
console.log(`OK: @segment/analytics-node ${SDK_VERSION}: ${expected.length} calls in ${httpLog.length} batches, all verified`)
