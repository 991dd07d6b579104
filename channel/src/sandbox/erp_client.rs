//! The ERP's side, as a client (issue 17): pushes bills to an invoice service the way an ERP
//! would — getAppToken.do, login.do, then BILL.PUSH / BILL.WITHDRAW / BILL.INVOICE.QUERY in the
//! envelope. It is the channel's own client pointed at that service with a business system's
//! credentials: an ERP written against the documented interfaces, which is what fapiao's ERP API
//! must serve. Tests and the demo use it against `fapiao serve`.

use std::time::Duration;

use fapiao_schemas::config::Secret;
use serde_json::{Value, json};

use crate::client::{ChannelClient, ClientConfig, RetryPolicy};
use crate::codec::Codec;
use crate::error::ChannelError;

/// The credentials `fapiao system add` printed, and where the service answers.
#[derive(Clone, Debug)]
pub struct ErpCredentials {
    pub base_url: String,
    pub app_id: String,
    pub app_secret: String,
    pub account_id: String,
    pub system_code: String,
    /// The AES password of `data` (`system add --aes`); `None`: Base64.
    pub data_password: Option<String>,
}

pub struct ErpClient {
    client: ChannelClient,
}

impl ErpClient {
    pub fn new(c: &ErpCredentials) -> ErpClient {
        let config = ClientConfig {
            base_url: c.base_url.trim_end_matches('/').to_string(),
            app_id: c.app_id.clone(),
            app_secret: Secret::new(c.app_secret.clone()),
            account_id: c.account_id.clone(),
            tenant_id: String::new(),
            user: "erp".into(),
            business_system_code: c.system_code.clone(),
            codec: c.data_password.as_deref().map_or(Codec::Base64, Codec::aes),
            max_in_flight: 8,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        };
        ErpClient { client: ChannelClient::new(config) }
    }

    /// BILL.PUSH: the per-bill answers when every bill was accepted; a refusal is the error
    /// (its code, the first refused bill's). Safe to resend: the service answers a bill it has
    /// with its first answer.
    pub async fn push(&self, bills: &Value) -> Result<Vec<Value>, ChannelError> {
        self.client.call("BILL.PUSH", bills, true).await
    }

    pub async fn withdraw(&self, bill_no: &str, seller: &str) -> Result<Value, ChannelError> {
        self.client
            .call("BILL.WITHDRAW", &json!({"billNo": bill_no, "sellerTaxpayerId": seller}), false)
            .await
    }

    /// RECEIPT.UPLOAD (receipt codes, mode 2): orders in the GET.ORDER shape → per order
    /// `{billNo, success, errorCode, message, qrLink}`. Safe to resend: an order the service has
    /// answers its link again.
    pub async fn upload_receipt_orders(&self, orders: &Value) -> Result<Vec<Value>, ChannelError> {
        self.client.call("RECEIPT.UPLOAD", orders, true).await
    }

    /// BILL.INVOICE.QUERY: `[{billNo, invoiceList: [...]}]`.
    pub async fn query(&self, bill_no: &str, seller: &str) -> Result<Vec<Value>, ChannelError> {
        self.client
            .call("BILL.INVOICE.QUERY", &json!({"billNo": bill_no, "sellerTaxpayerId": seller}), true)
            .await
    }
}

/// `count` bills of `lines` lines each (6%, 100.00 + 6.00 a line), numbered `PREFIX-000001`…,
/// in the documented field names, amounts as strings the way most senders write them.
pub fn sample_bills(
    prefix: &str,
    seller: &str,
    buyer_name: &str,
    count: usize,
    lines: usize,
    auto: bool,
) -> Value {
    let bills: Vec<Value> = (1..=count)
        .map(|n| {
            let detail: Vec<Value> = (1..=lines)
                .map(|i| {
                    json!({
                        "detailId": i.to_string(), "goodsName": "*现代服务*技术服务费",
                        "revenueCode": "3040201000000000000", "units": "次", "quantity": "1", "price": "100.00",
                        "amount": "100.00", "taxRate": "0.06", "taxAmount": "6.00", "lineProperty": "0"
                    })
                })
                .collect();
            json!({
                "billNo": format!("{prefix}-{n:06}"), "billDate": chrono::Utc::now().date_naive().to_string(),
                "sellerTaxpayerId": seller, "buyerName": buyer_name, "invoiceType": "10xdp",
                "autoInvoice": if auto { "1" } else { "0" }, "includeTaxFlag": "0",
                "totalAmount": format!("{}.00", 106 * lines), "billDetail": detail
            })
        })
        .collect();
    Value::Array(bills)
}
