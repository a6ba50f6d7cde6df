//! Merchants, customers and devices as the payment path reads them, kept in
//! memory after the first read. These rows are written once and never
//! updated (no statement in the store changes them), so a copy cannot go
//! stale, even with several gateways on one database; a missing row is not
//! remembered, so one created by another gateway is found on its next read.
//! Each map is emptied when it reaches [`MAX_ROWS`], which bounds memory.

use std::collections::HashMap;
use std::sync::Mutex;

use qrgate_store::{Customer, Device, Merchant, Store};

use crate::{Error, Gateway};

/// Most rows of one kind kept (about 300 bytes each).
const MAX_ROWS: usize = 100_000;

#[derive(Default)]
pub(crate) struct Rows {
    merchants: Mutex<HashMap<String, Merchant>>,
    customers: Mutex<HashMap<String, Customer>>,
    devices: Mutex<HashMap<String, Device>>,
}

fn get<T: Clone>(m: &Mutex<HashMap<String, T>>, id: &str) -> Option<T> {
    match m.lock() {
        Ok(g) => g.get(id).cloned(),
        Err(poisoned) => poisoned.into_inner().get(id).cloned(),
    }
}

fn put<T>(m: &Mutex<HashMap<String, T>>, id: &str, row: T) {
    let mut g = match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if g.len() >= MAX_ROWS {
        g.clear();
    }
    g.insert(id.to_owned(), row);
}

impl<S: Store> Gateway<S> {
    pub(crate) async fn merchant_row(&self, id: &str) -> Result<Option<Merchant>, Error> {
        if let Some(m) = get(&self.rows.merchants, id) {
            return Ok(Some(m));
        }
        let m = self.store.merchant(id).await?;
        if let Some(m) = &m {
            put(&self.rows.merchants, id, m.clone());
        }
        Ok(m)
    }

    pub(crate) async fn customer_row(&self, id: &str) -> Result<Option<Customer>, Error> {
        if let Some(c) = get(&self.rows.customers, id) {
            return Ok(Some(c));
        }
        let c = self.store.customer(id).await?;
        if let Some(c) = &c {
            put(&self.rows.customers, id, c.clone());
        }
        Ok(c)
    }

    pub(crate) async fn device_row(&self, id: &str) -> Result<Option<Device>, Error> {
        if let Some(d) = get(&self.rows.devices, id) {
            return Ok(Some(d));
        }
        let d = self.store.device(id).await?;
        if let Some(d) = &d {
            put(&self.rows.devices, id, d.clone());
        }
        Ok(d)
    }
}
