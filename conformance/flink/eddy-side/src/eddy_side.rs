//! The eddy side's entry: runs a case over a script, restored in the middle or not.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::cases::Case;
use crate::compare::{Outputs, Tagged};
use crate::eddy_run::build;
use crate::script::Script;

/// Runs `case` over `script`. A failed or panicking run is an output of its own, so that it
/// shows as a disagreement.
pub fn run(case: &Case, script: &Script) -> Outputs {
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let result = catch_unwind(AssertUnwindSafe(|| run_pipeline(case, script, &outputs)));
    let mut outputs = std::mem::take(&mut *outputs.lock().unwrap_or_else(|e| e.into_inner()));
    let failure = match result {
        Ok(Ok(())) => return outputs,
        Ok(Err(error)) => error,
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".to_string()),
    };
    outputs.push(Tagged {
        stream: "error".to_string(),
        watermark: i64::MAX,
        payload: format!("eddy failed: {failure}"),
    });
    outputs
}

fn run_pipeline(case: &Case, script: &Script, outputs: &Arc<Mutex<Vec<Tagged>>>) -> Result<(), String> {
    if case.restore {
        return crate::restore::run(case, script, outputs);
    }
    let graph = build(case, script, outputs, "")?;
    eddy::run_to_end(&graph).map_err(|e| e.to_string())?;
    Ok(())
}
