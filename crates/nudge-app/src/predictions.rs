//! Customer lifetime value and churn risk's use cases (docs/predictions.md): a fit on
//! request — the calibration end and the unit checked here, the work done by
//! `nudge_engine::fit_predictions` (the same the engine's scheduled refits run) —, the
//! current model, and a contact's predictions.

use crate::{App, AppError, Result};
use nudge_core::predict::{FitError, Prediction, Unit};
use nudge_core::{ContactId, Millis, parse_instant};
use nudge_engine::{FitFailure, PredictionEngineConfig, fit_predictions};
use nudge_store::StoredModel;

/// What a fit is asked for: the end of calibration (now when absent) and the unit
/// (days when absent), as they arrive (`until` text, `unit` text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FitRequest {
    pub until: Option<String>,
    pub unit: Option<String>,
}

/// A fit's outcome: the model stored, and how many contacts' predictions were written.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub model: StoredModel,
    pub predicted: usize,
}

/// The end of calibration and the unit of a request, checked: `until` an ISO 8601
/// date or instant not in the future, `unit` `days` or `weeks`.
pub fn parse_fit_request(request: &FitRequest, now: Millis) -> Result<(Millis, Unit)> {
    let until = match request.until.as_deref() {
        None => now,
        Some(text) => {
            let until = parse_instant(text).ok_or_else(|| {
                AppError::invalid_field(
                    "until",
                    format!(
                        "until: {text:?} is not an ISO 8601 date or date-time (2026-11-30 or 2026-11-30T00:00:00Z)"
                    ),
                )
            })?;
            if until > now {
                return Err(AppError::invalid_field(
                    "until",
                    "until: the calibration period cannot end in the future",
                ));
            }
            until
        }
    };
    let unit = match request.unit.as_deref() {
        None => Unit::Days,
        Some(text) => Unit::parse(text).ok_or_else(|| {
            AppError::invalid_field("unit", format!("unit: must be \"days\" or \"weeks\", got {text:?}"))
        })?,
    };
    Ok((until, unit))
}

impl App {
    /// Fits the models on the purchases up to the request's `until` and writes every
    /// customer's predictions as of then. Takes as long as reading every purchase.
    pub async fn fit_predictions(&self, request: &FitRequest) -> Result<Fitted> {
        let now = self.clock.now();
        let (until, unit) = parse_fit_request(request, now)?;
        match fit_predictions(&*self.store, until, unit, now, &PredictionEngineConfig::default()).await {
            Ok((model, predicted)) => Ok(Fitted { model, predicted }),
            Err(FitFailure::Model(e @ FitError::TooFewCustomers { .. })) => Err(AppError::NotEnoughData(e.to_string())),
            Err(FitFailure::Model(e)) => Err(AppError::Internal(e.to_string())),
            Err(FitFailure::Store(e)) => Err(e.into()),
        }
    }

    /// The current model.
    pub async fn prediction_model(&self) -> Result<StoredModel> {
        self.store.prediction_model().await?.ok_or_else(|| AppError::NotFound {
            field: None,
            message: "no lifetime-value model has been fitted yet: POST /api/v1/predictions/fit fits one (the engine \
                      also fits one daily once there are purchases)"
                .into(),
        })
    }

    /// A contact's predictions, if they have any (`NotFound` if there is no such contact).
    pub async fn contact_prediction(&self, contact: ContactId) -> Result<Option<Prediction>> {
        if self.store.contact(contact).await?.is_none() {
            return Err(AppError::NotFound {
                field: Some("id".into()),
                message: format!("no contact {contact}"),
            });
        }
        Ok(self.store.contact_prediction(contact).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    fn request(until: Option<&str>, unit: Option<&str>) -> FitRequest {
        FitRequest {
            until: until.map(str::to_string),
            unit: unit.map(str::to_string),
        }
    }

    #[test]
    fn a_fit_request_defaults_to_now_in_days() {
        assert_eq!(parse_fit_request(&request(None, None), NOW).unwrap(), (NOW, Unit::Days));
        assert_eq!(
            parse_fit_request(&request(Some("1997-09-30"), Some("weeks")), NOW).unwrap(),
            (parse_instant("1997-09-30T00:00:00Z").unwrap(), Unit::Weeks)
        );
    }

    #[test]
    fn a_bad_fit_request_names_its_field() {
        let field = |r: FitRequest| match parse_fit_request(&r, NOW) {
            Err(AppError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(request(Some("last tuesday"), None)), "until");
        assert_eq!(field(request(Some("2099-01-01"), None)), "until");
        assert_eq!(field(request(None, Some("months"))), "unit");
    }
}
