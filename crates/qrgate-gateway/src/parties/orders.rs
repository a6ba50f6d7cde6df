//! Orders: a merchant's dynamic code for one amount, open until it is
//! paid, closed or expires (the sweeper expires them).

use serde_json::json;

use qrgate_codes::merchant::{MerchantCode, MerchantCodeKind};
use qrgate_core::Money;
use qrgate_core::id::OrderId;
use qrgate_core::state::OrderStatus;
use qrgate_store::*;

use super::*;
use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::views::OrderView;
use crate::{Error, Gateway, Kind, Principal, Role};

impl<S: Store> Gateway<S> {
    /// A dynamic order code with its amount and expiry.
    pub async fn create_order(
        &self,
        p: &Principal,
        amount_str: &str,
        reference: Option<String>,
        out_trade_no: Option<String>,
        ttl_seconds: Option<i64>,
    ) -> Result<OrderView, Error> {
        let none = qrgate_core::Metadata::default();
        self.create_order_with_metadata(p, amount_str, reference, out_trade_no, ttl_seconds, &none)
            .await
    }

    /// [`Self::create_order`], with the merchant's notes on the order (the
    /// payment of it carries them too).
    pub async fn create_order_with_metadata(
        &self,
        p: &Principal,
        amount_str: &str,
        reference: Option<String>,
        out_trade_no: Option<String>,
        ttl_seconds: Option<i64>,
        metadata: &qrgate_core::Metadata,
    ) -> Result<OrderView, Error> {
        let m = self.merchant_of(p).await?;
        let amount = Money::parse_amount(amount_str, crate::CURRENCY)?;
        let max_ttl = self.limits.order_ttl_seconds;
        let ttl = ttl_seconds.unwrap_or(15 * 60);
        if ttl < 30 || ttl > max_ttl {
            return Err(Error::bad_request(
                "invalid_request",
                format!("expires_in must be 30 to {max_ttl} seconds"),
            )
            .with_rule("QG-ORDER-TTL"));
        }
        if let Some(o) = &out_trade_no {
            crate::check_merchant_number("out_trade_no", o)?;
        }
        let id: OrderId = self.new_id()?;
        let reference = match reference {
            Some(r) => {
                check_len("reference", &r, 25)?;
                r
            }
            None => id.to_string().chars().skip(4).take(25).collect(),
        };
        let now = self.now();
        // Whole seconds, as the code carries them.
        let expires_at = qrgate_core::Timestamp::from_unix_seconds(now.unix_seconds() + ttl)
            .ok_or_else(|| Error::internal("expiry overflow"))?;
        let code = MerchantCode {
            kind: MerchantCodeKind::Dynamic {
                order_id: id,
                amount,
                reference: reference.clone(),
                expires_at,
            },
            display: Self::display(&m),
        };
        let payload = code.issue(&self.keys_read())?;
        let order = Order {
            id: id.to_string(),
            merchant_id: m.id,
            amount_minor: amount.minor(),
            currency: crate::CURRENCY,
            reference,
            out_trade_no,
            status: OrderStatus::Open.as_str().into(),
            payload,
            payment_id: None,
            metadata: metadata.clone(),
            expires_at,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert(Record::Order(order.clone())).await {
            Ok(()) => Ok(OrderView::of(&order)),
            Err(StoreError::AlreadyExists(_)) => Err(Error::new(
                Kind::Conflict,
                "duplicate_out_trade_no",
                "out_trade_no was already used by this merchant",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_order(&self, p: &Principal, id: &str) -> Result<OrderView, Error> {
        let o = self
            .store
            .order(id)
            .await?
            .ok_or_else(|| Error::not_found("order", id))?;
        let visible = matches!(p.role, Role::Admin | Role::Auditor)
            || (p.role == Role::Merchant && p.subject.as_deref() == Some(o.merchant_id.as_str()));
        if !visible {
            return Err(Error::not_found("order", id));
        }
        Ok(OrderView::of(&o))
    }

    /// The merchant's order carrying its own number `out_trade_no`.
    pub async fn order_by_number(
        &self,
        p: &Principal,
        out_trade_no: &str,
    ) -> Result<OrderView, Error> {
        let merchant = p.merchant()?;
        let o = self
            .store
            .order_by_number(merchant, out_trade_no)
            .await?
            .ok_or_else(|| Error::not_found("order", out_trade_no))?;
        Ok(OrderView::of(&o))
    }

    /// Close an open order so its code can no longer be paid.
    pub async fn close_order(&self, p: &Principal, id: &str) -> Result<OrderView, Error> {
        let view = self.get_order(p, id).await?;
        p.require(&[Role::Merchant])?;
        let mut m = Movement::new(self.now());
        m.order = Some(crate::order_move(
            id,
            OrderStatus::Open,
            OrderStatus::Closed,
            None,
        )?);
        m.events
            .push(self.outbox(&view.merchant_id, Event::OrderClosed { order_id: id })?);
        m.audit = Some(trail::entry(Action::OrderClosed, id, p.into(), json!({})));
        self.store.apply(m).await?;
        self.get_order(p, id).await
    }

    /// Expire open orders whose time has passed; returns how many.
    pub async fn expire_orders(&self) -> Result<usize, Error> {
        let now = self.now();
        let due = self.store.orders_due(now, 200).await?;
        let mut n = 0;
        for o in due {
            let mut m = Movement::new(now);
            m.order = Some(crate::order_move(
                &o.id,
                OrderStatus::Open,
                OrderStatus::Expired,
                None,
            )?);
            // One id per order: two nodes expiring it write one event.
            m.events.push(
                Event::OrderExpired { order_id: &o.id }
                    .row(format!("evt_exp_{}", o.id), &o.merchant_id),
            );
            m.audit = Some(trail::entry(
                Action::OrderExpired,
                o.id.clone(),
                By::Gateway("order expiry"),
                json!({}),
            ));
            match self.store.apply(m).await {
                Ok(_) => n += 1,
                // Paid or closed meanwhile: nothing to do.
                Err(MovementError::OrderStateConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }
}
