// The demo database: several tables joined by foreign keys, with sequences, jsonb, bytea and NULLs.
// Deterministic (every value is a function of its row number), so two seeds of one scale are equal.
// Scale 1 is about 60,000 rows; the benchmark raises it to reach a target size.
import type { Client } from 'pg';

export const DEMO_SCHEMA = `
create table customers (
  id          serial primary key,
  email       text not null unique,
  name        text not null,
  country     char(2) not null,
  profile     jsonb,
  notes       text,
  created_at  timestamptz not null
);
create table products (
  id           serial primary key,
  sku          text not null unique,
  name         text not null,
  price_cents  integer not null check (price_cents > 0),
  attributes   jsonb not null,
  thumbnail    bytea
);
create table orders (
  id           bigserial primary key,
  customer_id  integer not null references customers(id),
  status       text not null check (status in ('placed', 'paid', 'shipped', 'cancelled')),
  total_cents  bigint not null default 0,
  placed_at    timestamptz not null,
  shipped_at   timestamptz
);
create table order_items (
  order_id          bigint not null references orders(id),
  line              smallint not null,
  product_id        integer not null references products(id),
  quantity          integer not null check (quantity > 0),
  unit_price_cents  integer not null,
  primary key (order_id, line)
);
create table payments (
  id            bigserial primary key,
  order_id      bigint not null references orders(id),
  amount_cents  bigint not null,
  method        text not null,
  gateway_raw   bytea,
  captured_at   timestamptz
);
create index orders_customer_idx on orders (customer_id);
create index payments_order_idx on payments (order_id);
`;

export function demoData(scale: number): string {
  const customers = Math.max(1, Math.round(2000 * scale));
  const orders = Math.max(1, Math.round(10000 * scale));
  return `
insert into customers (email, name, country, profile, notes, created_at)
select 'customer' || i || '@example.com',
       'Customer ' || i,
       (array['DE','FR','US','BR','JP','IN','NG','AU'])[1 + i % 8],
       case when i % 5 = 0 then null
            else jsonb_build_object('tier', (array['free','pro','enterprise'])[1 + i % 3], 'tags', jsonb_build_array('t' || i % 7, 't' || i % 11), 'score', (i * 37) % 100) end,
       case when i % 3 = 0 then 'prefers email; ' || repeat('x', i % 40) else null end,
       timestamptz '2024-01-01 00:00:00+00' + (i || ' minutes')::interval
  from generate_series(1, ${customers}) as i;

insert into products (sku, name, price_cents, attributes, thumbnail)
select 'SKU-' || lpad(i::text, 6, '0'),
       'Product ' || i,
       199 + (i * 7919) % 50000,
       jsonb_build_object('color', (array['red','green','blue','black'])[1 + i % 4], 'weight_g', 100 + i % 900),
       case when i % 4 = 0 then null else decode(md5('thumb' || i) || md5('img' || i), 'hex') end
  from generate_series(1, 500) as i;

insert into orders (customer_id, status, placed_at, shipped_at)
select 1 + (i * 7) % ${customers},
       (array['placed','paid','shipped','cancelled'])[1 + i % 4],
       timestamptz '2025-01-01 00:00:00+00' + (i || ' seconds')::interval,
       case when i % 4 = 2 then timestamptz '2025-01-02 00:00:00+00' + (i || ' seconds')::interval else null end
  from generate_series(1, ${orders}) as i;

insert into order_items (order_id, line, product_id, quantity, unit_price_cents)
select o.id, l, 1 + (o.id * 13 + l * 101) % 500, 1 + (o.id + l) % 5, 199 + ((1 + (o.id * 13 + l * 101) % 500) * 7919) % 50000
  from orders o, generate_series(1, 1 + (o.id % 4)::int) as l;

update orders o set total_cents = s.sum_cents
  from (select order_id, sum(quantity * unit_price_cents) as sum_cents from order_items group by order_id) s
 where s.order_id = o.id;

insert into payments (order_id, amount_cents, method, gateway_raw, captured_at)
select o.id, o.total_cents, (array['card','sepa','paypal'])[1 + o.id % 3],
       decode(md5('gw' || o.id) || md5('resp' || o.id) || md5('sig' || o.id), 'hex'),
       case when o.status in ('paid', 'shipped') then o.placed_at + interval '5 minutes' else null end
  from orders o where o.status <> 'cancelled';

analyze;
`;
}

/** Creates and fills the demo schema unless the database already has it. Returns whether it seeded. */
export async function seedDemo(client: Client, scale: number): Promise<boolean> {
  const present = await client.query(`select to_regclass('public.orders') is not null as present`);
  if (present.rows[0]?.present) return false;
  await client.query('begin');
  try {
    await client.query(DEMO_SCHEMA);
    await client.query(demoData(scale));
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
  return true;
}
