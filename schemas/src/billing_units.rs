//! Billing units (票量) charged for recognition (识别) and verification (查验).
//!
//! Seed 004, FAQ "发票校验流量包计费规则", rules (1)–(8):
//! 1. recognition + verification on one invoice = 1 unit; either alone = 0.5;
//! 2. one tenant collecting the same invoice again (any enterprise) is not charged again;
//! 3. collecting a previously deleted invoice again is not charged again;
//! 4. verifying a tax-bureau-downloaded invoice to complete its data is free; verifying any
//!    other invoice is charged;
//! 5. recognizing a tax-bureau-downloaded invoice (collected again by the assistant) is charged;
//! 6. an invoice rejected by the compliance check (not in the pool) is not charged;
//! 7. a failed recognition or verification call is not charged;
//! 8. deleting an invoice does not refund.
//!
//! The ledger keeps, per tenant and invoice identity, which of the two services has been charged;
//! it is never decremented (rules 3 and 8). Each service is charged at most once (rule 2).

use rust_decimal::Decimal;

/// Where the invoice came from in this collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Downloaded from the tax bureau by the sync jobs.
    TaxBureauDownload,
    /// Uploaded, imported from Excel, or collected by the assistant.
    Collected,
}

/// The outcome of one service call in this collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    NotCalled,
    Succeeded,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    pub source: Source,
    pub recognition: Call,
    pub verification: Call,
    /// Passed the compliance check and entered the pool.
    pub entered_pool: bool,
}

/// What the tenant has already been charged for this invoice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charged {
    pub recognition: bool,
    pub verification: bool,
}

/// Half a unit per service.
pub fn half() -> Decimal {
    Decimal::new(5, 1)
}

/// Units to charge for this collection and the ledger entry afterwards.
pub fn charge(before: Charged, collection: Collection) -> (Decimal, Charged) {
    if !collection.entered_pool {
        return (Decimal::ZERO, before); // rule 6
    }
    let recognition = collection.recognition == Call::Succeeded && !before.recognition; // 5, 7, 2
    let verification = collection.verification == Call::Succeeded
        && collection.source == Source::Collected // rule 4
        && !before.verification;
    let units = [recognition, verification].iter().filter(|c| **c).count();
    let after = Charged {
        recognition: before.recognition || recognition,
        verification: before.verification || verification,
    };
    (half() * Decimal::from(units), after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn collected(recognition: Call, verification: Call) -> Collection {
        Collection { source: Source::Collected, recognition, verification, entered_pool: true }
    }

    #[test]
    fn rule_1_both_is_one_either_is_half() {
        use Call::*;
        assert_eq!(charge(Charged::default(), collected(Succeeded, Succeeded)).0, dec!(1));
        assert_eq!(charge(Charged::default(), collected(Succeeded, NotCalled)).0, dec!(0.5));
        assert_eq!(charge(Charged::default(), collected(NotCalled, Succeeded)).0, dec!(0.5));
        assert_eq!(charge(Charged::default(), collected(NotCalled, NotCalled)).0, dec!(0));
    }

    #[test]
    fn rules_2_3_8_one_charge_per_invoice_per_tenant_whatever_happens_between() {
        use Call::*;
        let (_, ledger) = charge(Charged::default(), collected(Succeeded, Succeeded));
        // Another enterprise of the tenant, or the same invoice after deletion: the ledger stays.
        assert_eq!(charge(ledger, collected(Succeeded, Succeeded)), (dec!(0), ledger));
        // Only the service not yet charged is charged.
        let (_, only_recognized) = charge(Charged::default(), collected(Succeeded, NotCalled));
        assert_eq!(charge(only_recognized, collected(Succeeded, Succeeded)).0, dec!(0.5));
    }

    #[test]
    fn rule_4_verifying_downloads_is_free_other_verification_is_charged() {
        let download = Collection {
            source: Source::TaxBureauDownload,
            recognition: Call::NotCalled,
            verification: Call::Succeeded,
            entered_pool: true,
        };
        assert_eq!(charge(Charged::default(), download), (dec!(0), Charged::default()));
        assert_eq!(charge(Charged::default(), collected(Call::NotCalled, Call::Succeeded)).0, dec!(0.5));
    }

    #[test]
    fn rule_5_recognizing_a_downloaded_invoice_is_charged() {
        let download = Collection {
            source: Source::TaxBureauDownload,
            recognition: Call::Succeeded,
            verification: Call::Succeeded,
            entered_pool: true,
        };
        assert_eq!(charge(Charged::default(), download).0, dec!(0.5));
    }

    #[test]
    fn rule_6_compliance_rejected_is_free() {
        let rejected = Collection { entered_pool: false, ..collected(Call::Succeeded, Call::Succeeded) };
        assert_eq!(charge(Charged::default(), rejected), (dec!(0), Charged::default()));
    }

    #[test]
    fn rule_7_failed_calls_are_free() {
        use Call::*;
        assert_eq!(charge(Charged::default(), collected(Failed, Failed)).0, dec!(0));
        assert_eq!(charge(Charged::default(), collected(Succeeded, Failed)).0, dec!(0.5));
        let (_, ledger) = charge(Charged::default(), collected(Failed, Succeeded));
        assert_eq!(ledger, Charged { recognition: false, verification: true });
    }
}
