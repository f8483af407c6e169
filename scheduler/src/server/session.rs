//! The worker session's outbound messages, framed here instead of by tonic's generated server. A
//! tonic response stream encodes every message into one buffer that lives as long as the stream and
//! keeps the capacity of the largest message it ever held: a worker session lasts as long as the
//! worker, and the largest message it carries is a job's whole graph (about 100 bytes per layer), so
//! after one 100,000-layer job the scheduler kept a 16 MiB buffer resident per worker, for good.
//! Here each batch of ready messages is encoded into a buffer of its own that is freed as soon as
//! the connection has sent it. Everything else about the call (auth, decoding the worker's messages,
//! the other methods) stays with tonic: [`SessionRoute`] sits between the auth interceptor and the
//! generated server and only takes over the `WorkerSession` path.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Frame;
use prost::Message;
use tessera_proto::v1 as pb;
use tessera_proto::v1::scheduler_server::{Scheduler, SchedulerServer};
use tokio_stream::Stream;
use tonic::body::Body;
use tonic::codec::{BufferSettings, Streaming};
use tonic::codegen::{BoxFuture, Bytes, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Request, Status};

use super::grpc::SchedulerService;

/// The gRPC path of the worker session.
pub const WORKER_SESSION_PATH: &str = "/tessera.v1.Scheduler/WorkerSession";

/// A data frame is handed to the connection once this many bytes of messages are ready (tonic's
/// own threshold): short messages that are ready together go in one frame.
const FRAME_BYTES: usize = 32 << 10;

/// gRPC's length-prefixed message: a compression flag byte and a big-endian u32 length.
const PREFIX_BYTES: usize = 5;

/// The generated server with the worker session served by [`session_response`].
#[derive(Clone, Debug)]
pub struct SessionRoute {
    server: SchedulerServer<SchedulerService>,
    service: SchedulerService,
    max_decoding_message_size: usize,
}

impl SessionRoute {
    pub fn new(service: SchedulerService, max_decoding_message_size: usize) -> SessionRoute {
        let server = SchedulerServer::new(service.clone())
            // A larger message is refused from its length prefix, before its body is read.
            .max_decoding_message_size(max_decoding_message_size)
            .max_encoding_message_size(usize::MAX);
        SessionRoute {
            server,
            service,
            max_decoding_message_size,
        }
    }
}

impl NamedService for SessionRoute {
    const NAME: &'static str = <SchedulerServer<SchedulerService> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for SessionRoute {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <SchedulerServer<SchedulerService> as Service<http::Request<Body>>>::poll_ready(
            &mut self.server,
            cx,
        )
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != WORKER_SESSION_PATH {
            return Box::pin(self.server.call(request));
        }
        let service = self.service.clone();
        let max = self.max_decoding_message_size;
        Box::pin(async move { Ok(session_response(service, request, max).await) })
    }
}

/// Serves one worker session: the worker's messages are decoded by tonic, the scheduler's are
/// framed by [`SessionBody`].
async fn session_response(
    service: SchedulerService,
    request: http::Request<Body>,
    max_decoding_message_size: usize,
) -> http::Response<Body> {
    if request.headers().contains_key("grpc-encoding") {
        return Status::unimplemented("the scheduler does not accept compressed messages")
            .into_http();
    }
    let (parts, body) = request.into_parts();
    let decoder = tonic_prost::ProstCodec::<pb::SchedulerMessage, pb::WorkerMessage>::raw_decoder(
        BufferSettings::default(),
    );
    let inbound = Streaming::new_request(decoder, body, None, Some(max_decoding_message_size));
    let request = Request::from_http(http::Request::from_parts(parts, inbound));
    match service.worker_session(request).await {
        Err(status) => status.into_http(),
        Ok(response) => {
            let (metadata, stream, _) = response.into_parts();
            let mut http = http::Response::new(Body::new(SessionBody::new(stream)));
            *http.headers_mut() = metadata.into_headers();
            http.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            http
        }
    }
}

/// The response body of a worker session: gRPC-framed messages, each batch in a buffer of its own,
/// then the status trailers.
pub struct SessionBody<S> {
    messages: S,
    /// The stream ended (or failed) after a data frame was returned: its trailers come next.
    end: Option<Status>,
    done: bool,
}

impl<S> std::fmt::Debug for SessionBody<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBody")
            .field("end", &self.end)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S> SessionBody<S> {
    pub fn new(messages: S) -> Self {
        SessionBody {
            messages,
            end: None,
            done: false,
        }
    }
}

/// The trailers that end the call with `status`.
fn trailers(status: &Status) -> Frame<Bytes> {
    let mut headers = http::HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(Code::Internal as i32),
        );
    }
    Frame::trailers(headers)
}

/// Appends `message`, length-prefixed, to `frame`.
fn append(frame: &mut Vec<u8>, message: &pb::SchedulerMessage) -> Result<(), Status> {
    let len = message.encoded_len();
    let prefix = u32::try_from(len).map_err(|_| {
        Status::resource_exhausted(format!(
            "a {len}-byte message to the worker is over gRPC's 4 GiB limit"
        ))
    })?;
    frame.reserve(PREFIX_BYTES + len);
    frame.push(0);
    frame.extend_from_slice(&prefix.to_be_bytes());
    message
        .encode(frame)
        .map_err(|e| Status::internal(format!("encoding a message to the worker: {e}")))
}

impl<S> http_body::Body for SessionBody<S>
where
    S: Stream<Item = Result<pb::SchedulerMessage, Status>> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(status) = self.end.take() {
            self.done = true;
            return Poll::Ready(Some(Ok(trailers(&status))));
        }
        let mut frame = Vec::new();
        loop {
            let end = match Pin::new(&mut self.messages).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => match append(&mut frame, &message) {
                    Ok(()) if frame.len() < FRAME_BYTES => continue,
                    Ok(()) => break,
                    Err(status) => status,
                },
                Poll::Ready(Some(Err(status))) => status,
                Poll::Ready(None) => Status::new(Code::Ok, ""),
                Poll::Pending if frame.is_empty() => return Poll::Pending,
                Poll::Pending => break,
            };
            if frame.is_empty() {
                self.done = true;
                return Poll::Ready(Some(Ok(trailers(&end))));
            }
            self.end = Some(end);
            break;
        }
        // `Bytes::from(Vec)` owns the buffer: it is freed once the connection has written it.
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(frame)))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::future::poll_fn;

    fn graph_message(layers: usize) -> pb::SchedulerMessage {
        pb::SchedulerMessage {
            msg: Some(pb::scheduler_message::Msg::Graph(pb::JobGraph {
                job: 7,
                graph: Some(pb::Graph {
                    layers: vec![pb::Layer::default(); layers],
                    ..Default::default()
                }),
                job_key: vec![1; 16],
            })),
        }
    }

    fn goodbye() -> pb::SchedulerMessage {
        pb::SchedulerMessage {
            msg: Some(pb::scheduler_message::Msg::Goodbye(pb::Goodbye {})),
        }
    }

    /// Splits gRPC framing back into messages (an independent reading of the wire format).
    fn unframe(mut data: &[u8]) -> Vec<pb::SchedulerMessage> {
        let mut out = Vec::new();
        while !data.is_empty() {
            assert_eq!(data[0], 0, "uncompressed");
            let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
            out.push(pb::SchedulerMessage::decode(&data[5..5 + len]).unwrap());
            data = &data[5 + len..];
        }
        out
    }

    #[tokio::test]
    async fn messages_are_framed_in_their_own_buffers_then_the_status() {
        let sent = vec![goodbye(), graph_message(20_000), goodbye(), goodbye()];
        let mut body = SessionBody::new(tokio_stream::iter(sent.clone().into_iter().map(Ok)));
        let mut frames = Vec::new();
        let mut trailer = None;
        while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.unwrap();
            match frame.into_data() {
                Ok(data) => frames.push(data),
                Err(frame) => trailer = Some(frame.into_trailers().unwrap()),
            }
        }
        assert!(body.is_end_stream());
        // The large graph closes its frame; the goodbyes after it get a frame of their own, so the
        // large buffer is not kept to carry them.
        assert_eq!(frames.len(), 2);
        let sizes: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert!(sizes[0] > FRAME_BYTES && sizes[1] < 64, "{sizes:?}");
        let received: Vec<_> = frames.iter().flat_map(|f| unframe(f)).collect();
        assert_eq!(received, sent);
        assert_eq!(trailer.unwrap()["grpc-status"], "0");
    }

    #[tokio::test]
    async fn a_failing_stream_ends_with_its_status_after_what_was_ready() {
        let items = vec![Ok(goodbye()), Err(Status::permission_denied("no"))];
        let mut body = SessionBody::new(tokio_stream::iter(items));
        let first = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unframe(&first.into_data().unwrap()), vec![goodbye()]);
        let last = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        let trailers = last.into_trailers().unwrap();
        assert_eq!(
            trailers["grpc-status"],
            (Code::PermissionDenied as i32).to_string()
        );
        assert!(
            poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
                .await
                .is_none()
        );
    }
}
