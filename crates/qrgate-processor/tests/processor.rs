//! The sandbox through the trait object, as the gateway holds it.

use std::sync::Arc;
use std::time::Duration;

use qrgate_processor::{
    AuthRequest, Behaviour, CardDetails, Outcome, Processor, Sandbox, TEST_CARDS,
};

#[tokio::test]
async fn each_documented_card_behaves_as_documented_behind_dyn_processor() {
    let sandbox = Sandbox::new(Duration::from_millis(20)).with_hang(Duration::from_millis(200));
    let p: Arc<dyn Processor> = Arc::new(sandbox);
    let deadline = Duration::from_millis(100);
    for (i, card) in TEST_CARDS.iter().enumerate() {
        let t = p
            .tokenize(
                CardDetails {
                    number: card.number,
                    exp_month: 1,
                    exp_year: 2031,
                },
                (2026, 11),
            )
            .await
            .unwrap();
        let id = format!("pay_{i}");
        let answer = tokio::time::timeout(
            deadline,
            p.authorize(AuthRequest {
                request_id: &id,
                token: &t.token,
                amount_minor: 5000,
                currency: "CNY",
            }),
        )
        .await;
        let approved = matches!(answer, Ok(Ok(Outcome::Approved { .. })));
        let timed_out = answer.is_err();
        let declined = matches!(answer, Ok(Ok(Outcome::Declined(_))));
        let what = card.what;
        match card.behaviour {
            Behaviour::TimeoutThenApproved | Behaviour::TimeoutUnknown => {
                assert!(timed_out, "{what}")
            }
            Behaviour::DeclineInsufficientFunds | Behaviour::DeclineSuspectedFraud => {
                assert!(declined, "{what}")
            }
            Behaviour::Approve | Behaviour::ApproveAfterDelay => {
                assert!(approved, "{what}: {answer:?}")
            }
        }
    }
}
