//! [`ExtProc`]: one ext_proc gRPC server over any [`Processor`]. Each gRPC stream is one HTTP
//! exchange: the server asks the processor for an [`Exchange`] when the stream opens and hands
//! it every message in order, sending back what it answers. The WAF and the transformations
//! are two processors over this one loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::pb::is_immediate;

/// A filter served as Envoy's external processor: it starts one [`Exchange`] per gRPC stream
/// (one HTTP request and its response).
pub trait Processor: Send + Sync + 'static {
    /// The state of one exchange.
    type Exchange: Exchange;

    /// Starts an exchange. `metadata` is the gRPC stream's initial metadata: what the
    /// ext_proc filter's `grpc_service.initial_metadata` (or a route's
    /// `ExtProcPerRoute.overrides.grpc_initial_metadata`) adds. An error ends the stream
    /// (Envoy then applies its `failure_mode_allow`).
    fn exchange(&self, metadata: &MetadataMap) -> Result<Self::Exchange, Status>;
}

/// One HTTP exchange in a [`Processor`].
pub trait Exchange: Send + 'static {
    /// Handles one message from Envoy; `Ok(None)` when it needs no answer. After an answer
    /// that is an `immediate_response`, or an error, the stream ends.
    fn on_message(
        &mut self,
        message: ProcessingRequest,
    ) -> impl Future<Output = Result<Option<ProcessingResponse>, Status>> + Send;
}

/// The ext_proc gRPC service (`envoy.service.ext_proc.v3.ExternalProcessor`) over a
/// [`Processor`]; [`into_server`](Self::into_server) gives the tonic service to serve.
#[derive(Debug)]
pub struct ExtProc<P> {
    processor: Arc<P>,
}

impl<P> Clone for ExtProc<P> {
    fn clone(&self) -> Self {
        Self {
            processor: self.processor.clone(),
        }
    }
}

impl<P: Processor> ExtProc<P> {
    /// Serves `processor`.
    pub fn new(processor: P) -> Self {
        Self {
            processor: Arc::new(processor),
        }
    }

    /// The tonic service to serve.
    pub fn into_server(self) -> ExternalProcessorServer<Self> {
        ExternalProcessorServer::new(self)
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<P: Processor> ExternalProcessor for ExtProc<P> {
    type ProcessStream = ResponseStream;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let mut exchange = self.processor.exchange(request.metadata())?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(message) = inbound.next().await {
                let reply = match message {
                    // Every processor here changes or refuses exchanges, which an observer
                    // (whose answers Envoy ignores) cannot do.
                    Ok(message) if message.observability_mode => Err(Status::invalid_argument(
                        "observability mode is not supported: the processor must be able to \
                         change or refuse the exchange",
                    )),
                    Ok(message) => exchange.on_message(message).await,
                    Err(status) => Err(status),
                };
                let stop = match &reply {
                    Err(_) => true,
                    Ok(r) => r.as_ref().is_some_and(is_immediate),
                };
                if let Some(reply) = reply.transpose() {
                    if tx.send(reply).await.is_err() {
                        return;
                    }
                }
                if stop {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
