//! A time limit that stops a query from inside its plan.
//!
//! Dropping or aborting a query's task only takes effect at its next yield, and some operators
//! (nested-loop and cross joins feeding each other) run for a long time without yielding
//! (apache/datafusion#19358): the task keeps its thread after the caller gave up. So every edge
//! of the physical plan gets a [`DeadlineExec`] whose stream fails once the deadline has passed;
//! any operator that reads or produces a batch then meets it and the whole query unwinds.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::Stream;

use crate::Result;

/// The message a query stopped by its deadline fails with.
pub const DEADLINE_MESSAGE: &str = "the query passed its time limit and was stopped";

/// `plan` with a [`DeadlineExec`] above every node.
pub fn with_deadline(plan: Arc<dyn ExecutionPlan>, deadline: Instant) -> Result<Arc<dyn ExecutionPlan>> {
    let wrapped = plan
        .transform_up(|node| {
            let children: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
            if children.is_empty() {
                return Ok(Transformed::no(node));
            }
            let children = children
                .into_iter()
                .map(|c| Arc::new(DeadlineExec::new(c, deadline)) as Arc<dyn ExecutionPlan>)
                .collect();
            // The wrappers have their children's properties: nothing to recompute.
            let node = node.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep))?;
            Ok(Transformed::yes(node))
        })?
        .data;
    Ok(Arc::new(DeadlineExec::new(wrapped, deadline)))
}

/// Passes batches through until the deadline, then fails.
#[derive(Debug)]
pub struct DeadlineExec {
    input: Arc<dyn ExecutionPlan>,
    deadline: Instant,
}

impl DeadlineExec {
    fn new(input: Arc<dyn ExecutionPlan>, deadline: Instant) -> Self {
        Self { input, deadline }
    }
}

impl DisplayAs for DeadlineExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeadlineExec")
    }
}

impl ExecutionPlan for DeadlineExec {
    fn name(&self) -> &str {
        "DeadlineExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input, self.deadline))),
            _ => Err(DataFusionError::Internal("DeadlineExec takes exactly one child".into())),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        if Instant::now() >= self.deadline {
            return Err(DataFusionError::ResourcesExhausted(DEADLINE_MESSAGE.into()));
        }
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(DeadlineStream { input, deadline: self.deadline, done: false }))
    }
}

struct DeadlineStream {
    input: SendableRecordBatchStream,
    deadline: Instant,
    done: bool,
}

impl Stream for DeadlineStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if Instant::now() >= self.deadline {
            self.done = true;
            return Poll::Ready(Some(Err(DataFusionError::ResourcesExhausted(DEADLINE_MESSAGE.into()))));
        }
        self.input.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for DeadlineStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
