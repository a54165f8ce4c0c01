//! `cdc-orders`: Debezium change events of an `orders` and a `customers` table (created,
//! updated, cancelled, deleted; customers created and moved between regions), as one change
//! log. The orders come from MySQL (binlog positions: file, pos, row), as Kafka Connect
//! writes them with schemas (`{"schema": .., "payload": ..}`); the customers from PostgreSQL
//! (`lsn`, a snapshot first), bare. Each row's events are turned into a changelog (replays
//! dropped by their position), orders are joined with their customer (a left outer join: an
//! order whose customer is not there yet counts in region `unknown` until it comes), and per
//! region the revenue of the orders that are not cancelled and the number of open orders are
//! kept, updating.

use std::collections::BTreeMap;

use eddy_engine::cdc::{encode_line, ChangeEvent, DebeziumJson, Op, Position, SourceInfo};
use eddy_engine::{JobGraph, JoinKind, Pipeline, Record, RetractableAggregate, Row, Stream, WatermarkStrategy};
use eddy_sim::{Checked, EventSource, LineParser, Outputs, Recorded, Workload};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{compare_changelog, json_line, outcome};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Order {
    pub id: u32,
    pub customer_id: u32,
    /// Cents.
    pub amount: i64,
    /// `open`, `shipped` or `cancelled`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Customer {
    pub id: u32,
    pub name: String,
    pub region: String,
}

/// A row of either table, as Debezium's `before` and `after` carry it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TableRow {
    Order(Order),
    Customer(Customer),
}

pub type Change = ChangeEvent<TableRow>;

/// `(table, id)`: a row's key.
fn row_key(row: &TableRow) -> (u8, u32) {
    match row {
        TableRow::Order(o) => (0, o.id),
        TableRow::Customer(c) => (1, c.id),
    }
}

/// Per region: revenue of orders not cancelled, and open orders.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionTotals;

impl RetractableAggregate<(String, Order)> for RegionTotals {
    /// Revenue, open orders, orders.
    type Acc = (i64, i64, i64);
    type Out = (i64, i64);
    fn add(&self, acc: &mut (i64, i64, i64), (_, order): &(String, Order)) {
        acc.0 += if order.status == "cancelled" { 0 } else { order.amount };
        acc.1 += i64::from(order.status == "open");
        acc.2 += 1;
    }
    fn retract(&self, acc: &mut (i64, i64, i64), (_, order): &(String, Order)) {
        acc.0 -= if order.status == "cancelled" { 0 } else { order.amount };
        acc.1 -= i64::from(order.status == "open");
        acc.2 -= 1;
    }
    fn result(&self, acc: &(i64, i64, i64)) -> Option<(i64, i64)> {
        (acc.2 > 0).then_some((acc.0, acc.1))
    }
}

/// The positions of the two databases' logs as the generator writes them.
struct Logs {
    /// PostgreSQL: the snapshot's LSN (every snapshot read's), and the last change's. Changes
    /// start below the snapshot's LSN: a transaction that began before the snapshot and
    /// committed after it has such changes, and they are not replays.
    snapshot_lsn: u64,
    lsn: u64,
    /// MySQL: the binlog file's number (some seeds cross from `.999999` to `.1000000`), the
    /// event's offset and the row within it; consecutive orders may share an event (one
    /// statement changing several rows).
    binlog_file: u64,
    pos: u64,
    row: u32,
    last_was_order: bool,
}

impl Logs {
    fn new(rng: &mut ChaCha8Rng) -> Logs {
        let snapshot_lsn = rng.gen_range(20_000_000..30_000_000);
        Logs {
            snapshot_lsn,
            lsn: snapshot_lsn - rng.gen_range(0..20_000),
            binlog_file: if rng.gen_bool(0.3) { 999_998 } else { 3 },
            pos: 154,
            row: 0,
            last_was_order: false,
        }
    }

    fn postgres(&mut self, rng: &mut ChaCha8Rng, op: Op) -> Position {
        self.last_was_order = false;
        if op == Op::Read {
            return Position::Postgres { lsn: self.snapshot_lsn };
        }
        self.lsn += rng.gen_range(8..120);
        Position::Postgres { lsn: self.lsn }
    }

    fn binlog(&mut self, rng: &mut ChaCha8Rng) -> Position {
        if self.last_was_order && rng.gen_bool(0.25) {
            self.row += 1;
        } else {
            if rng.gen_bool(0.02) {
                self.binlog_file += 1;
                self.pos = 4;
            }
            self.pos += rng.gen_range(64..600);
            self.row = 0;
        }
        self.last_was_order = true;
        Position::Binlog {
            file: format!("mysql-bin.{:06}", self.binlog_file),
            pos: self.pos,
            row: self.row,
        }
    }
}

pub const UNKNOWN_REGION: &str = "unknown";
const REGIONS: [&str; 4] = ["eu", "us", "apac", "latam"];

pub struct CdcOrders;

/// Revenue and open orders per region, as a changelog.
fn region_totals(pipeline: &Pipeline, source: EventSource<Change>) -> Stream<RegionRow> {
    let rows = source
        .stream(
            pipeline,
            "changes",
            WatermarkStrategy::bounded_out_of_orderness(1_000).with_interval(200),
        )
        .debezium_changelog(row_key);
    let orders = rows.clone().flat_map(|r: Row<TableRow>| match r.row {
        TableRow::Order(o) => Some(Row::new(r.kind, o)),
        TableRow::Customer(_) => None,
    });
    let customers = rows.flat_map(|r: Row<TableRow>| match r.row {
        TableRow::Customer(c) => Some(Row::new(r.kind, c)),
        TableRow::Order(_) => None,
    });
    orders
        .key_by(|o: &Row<Order>| o.row.customer_id)
        .join_changelog(customers, |c: &Customer| c.id, JoinKind::LeftOuter)
        .map(|r: Row<(Order, Option<Customer>)>| {
            let (order, customer) = r.row;
            let region = customer.map_or(UNKNOWN_REGION.to_string(), |c| c.region);
            Row::new(r.kind, (region, order))
        })
        .key_by(|r: &Row<(String, Order)>| r.row.0.clone())
        .aggregate_changelog(RegionTotals)
}

/// A row of the totals: region, then revenue and open orders.
type RegionRow = Row<(String, (i64, i64))>;

/// A Debezium change event (a JSON line, wrapped or not), at its `ts_ms`; a tombstone is no
/// event.
fn parse_change_line(line: &str) -> Result<Option<Record<Change>>, String> {
    let event = DebeziumJson::default()
        .decode::<TableRow>(line)
        .map_err(|e| e.to_string())?;
    Ok(event.map(|event| Record::new(event.ts_ms, event)))
}

/// Where the reference places an event in its row's log: a snapshot read before every change;
/// changes by PostgreSQL's `lsn`, or by MySQL's binlog file number, `pos` and `row`.
fn reference_place(event: &Change) -> (bool, u64, u64, u32) {
    match &event.source.position {
        _ if event.op == Op::Read => (false, 0, 0, 0),
        Position::Postgres { lsn } => (true, *lsn, 0, 0),
        Position::Binlog { file, pos, row } => {
            let number = file.rsplit('.').next().and_then(|n| n.parse().ok());
            (
                true,
                number.expect("the generator names binlogs BASE.NUMBER"),
                *pos,
                *row,
            )
        }
        Position::SqlServer { .. } => unreachable!("cdc-orders reads no SQL Server"),
    }
}

/// The reference: the tables after applying every event in log order, each row's replays
/// (a snapshot read once the row has an event, a change not past the row's last) skipped;
/// orders joined with customers; totals per region.
fn reference_totals(input: &[Record<Change>]) -> Vec<(String, (i64, i64))> {
    let mut last: BTreeMap<(u8, u32), (bool, u64, u64, u32)> = BTreeMap::new();
    let mut orders: BTreeMap<u32, Order> = BTreeMap::new();
    let mut customers: BTreeMap<u32, Customer> = BTreeMap::new();
    for r in input {
        let event = &r.value;
        let Some(row) = event.row() else { continue };
        let key = row_key(row);
        let place = reference_place(event);
        if last.get(&key).is_some_and(|l| !place.0 || place <= *l) {
            continue;
        }
        last.insert(key, place);
        let after = if event.op == Op::Delete {
            None
        } else {
            event.after.clone()
        };
        match (key.0, after) {
            (0, Some(TableRow::Order(o))) => {
                orders.insert(o.id, o);
            }
            (0, _) => {
                orders.remove(&key.1);
            }
            (_, Some(TableRow::Customer(c))) => {
                customers.insert(c.id, c);
            }
            (_, _) => {
                customers.remove(&key.1);
            }
        }
    }
    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for order in orders.values() {
        let region = customers
            .get(&order.customer_id)
            .map_or(UNKNOWN_REGION.to_string(), |c| c.region.clone());
        let total = totals.entry(region).or_default();
        if order.status != "cancelled" {
            total.0 += order.amount;
        }
        total.1 += i64::from(order.status == "open");
    }
    totals.into_iter().collect()
}

impl Workload for CdcOrders {
    type Event = Change;

    fn name(&self) -> &'static str {
        "cdc-orders"
    }

    fn description(&self) -> &'static str {
        "Debezium changes of orders (MySQL, wrapped) joined with customers (PostgreSQL), left outer; revenue and open orders per region, updating"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        1_000
    }

    fn default_events(&self) -> usize {
        1_000
    }

    /// One partition: a row's changes must stay in order, and a log spread round-robin over
    /// partitions read in parallel would interleave them (Kafka partitions Debezium topics
    /// by row key for the same reason).
    fn partitions(&self) -> usize {
        1
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Change>> {
        let mut orders: BTreeMap<u32, Order> = BTreeMap::new();
        let mut customers: BTreeMap<u32, Customer> = BTreeMap::new();
        let (mut ts, mut next_order) = (rng.gen_range(0..10_000i64), 0u32);
        let mut logs = Logs::new(rng);
        let mut log = Vec::with_capacity(events);
        let mut push = |log: &mut Vec<Record<Change>>,
                        rng: &mut ChaCha8Rng,
                        op: Op,
                        before: Option<TableRow>,
                        after: Option<TableRow>,
                        ts: i64| {
            let (table, position) = match after.as_ref().or(before.as_ref()) {
                Some(TableRow::Order(_)) => ("orders", logs.binlog(rng)),
                _ => ("customers", logs.postgres(rng, op)),
            };
            let source = SourceInfo {
                table: table.to_string(),
                position,
            };
            let event = ChangeEvent {
                op,
                before,
                after,
                source,
                ts_ms: ts,
            };
            log.push(Record::new(ts, event));
        };
        while log.len() < events {
            ts += rng.gen_range(0..300);
            let customer_id = rng.gen_range(0..30u32);
            match rng.gen_range(0..100) {
                // A customer appears (the snapshot reads some, later ones are created).
                0..=14 if !customers.contains_key(&customer_id) => {
                    let c = Customer {
                        id: customer_id,
                        name: format!("customer {customer_id}"),
                        region: REGIONS[rng.gen_range(0..REGIONS.len())].to_string(),
                    };
                    customers.insert(customer_id, c.clone());
                    let op = if ts < 2_000 { Op::Read } else { Op::Create };
                    push(&mut log, rng, op, None, Some(TableRow::Customer(c)), ts);
                }
                // A customer moves to another region.
                15..=19 if customers.contains_key(&customer_id) => {
                    let before = customers[&customer_id].clone();
                    let mut after = before.clone();
                    after.region = REGIONS[rng.gen_range(0..REGIONS.len())].to_string();
                    customers.insert(customer_id, after.clone());
                    push(
                        &mut log,
                        rng,
                        Op::Update,
                        Some(TableRow::Customer(before)),
                        Some(TableRow::Customer(after)),
                        ts,
                    );
                }
                // An order changes: its amount, shipped, cancelled, or deleted.
                20..=54 if !orders.is_empty() => {
                    let id = *orders.keys().nth(rng.gen_range(0..orders.len())).expect("an order");
                    let before = orders[&id].clone();
                    if rng.gen_bool(0.1) {
                        orders.remove(&id);
                        push(&mut log, rng, Op::Delete, Some(TableRow::Order(before)), None, ts);
                        continue;
                    }
                    let mut after = before.clone();
                    match rng.gen_range(0..3) {
                        0 => after.amount = rng.gen_range(100..50_000),
                        1 => after.status = "shipped".to_string(),
                        _ => after.status = "cancelled".to_string(),
                    }
                    orders.insert(id, after.clone());
                    push(
                        &mut log,
                        rng,
                        Op::Update,
                        Some(TableRow::Order(before)),
                        Some(TableRow::Order(after)),
                        ts,
                    );
                }
                // A new order.
                _ => {
                    let o = Order {
                        id: next_order,
                        customer_id,
                        amount: rng.gen_range(100..50_000),
                        status: "open".to_string(),
                    };
                    next_order += 1;
                    orders.insert(o.id, o.clone());
                    push(&mut log, rng, Op::Create, None, Some(TableRow::Order(o)), ts);
                }
            }
        }
        log
    }

    fn line_parser(&self) -> LineParser<Change> {
        parse_change_line
    }

    /// Orders as MySQL's connector writes them through Kafka Connect with schemas, customers
    /// as PostgreSQL's, bare.
    fn event_line(&self, record: &Record<Change>) -> String {
        let wrapped = matches!(record.value.source.position, Position::Binlog { .. });
        encode_line(&record.value, wrapped)
    }

    fn keep_order(&self, a: &Change, b: &Change) -> bool {
        a.row().map(row_key) == b.row().map(row_key)
    }

    fn build(&self, source: EventSource<Change>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        // Keyed by region, so that an update's `-U` and `+U` commit together.
        let totals = region_totals(&pipeline, source);
        outputs.changelog_as("totals", totals, |row: &(String, (i64, i64))| row.0.clone(), json_line);
        pipeline.build().expect("the cdc-orders pipeline is valid")
    }

    /// Each row's last position, each customer and order in the join, each region's totals.
    fn live_state_entries(&self, input: &[Record<Change>], _outputs: &Outputs) -> usize {
        let rows: std::collections::BTreeSet<(u8, u32)> =
            input.iter().filter_map(|r| r.value.row().map(row_key)).collect();
        let customers: std::collections::BTreeSet<u32> = rows.iter().filter(|k| k.0 == 1).map(|k| k.1).collect();
        // The join keeps a key per customer id (orders and customers by customer id).
        let join_keys: std::collections::BTreeSet<u32> = input
            .iter()
            .filter_map(|r| match r.value.row()? {
                TableRow::Order(o) => Some(o.customer_id),
                TableRow::Customer(c) => Some(c.id),
            })
            .collect();
        rows.len() + customers.len().max(join_keys.len()) + REGIONS.len() + 1
    }

    fn check(&self, input: &[Record<Change>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let totals = outputs.log::<RegionRow>("totals");
        let committed = totals.records();
        let verdict = compare_changelog("totals", &totals, reference_totals(input));
        outcome::<_, Change>(&committed, &[], verdict)
    }
}
