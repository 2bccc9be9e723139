//! The one writer of local responses (API answers, policy refusals, whoami, upstream errors).
//! It always sets `Content-Length`.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use crate::api::ApiResponse;

/// Write a complete local response to the downstream.
pub async fn send(session: &mut Session, resp: ApiResponse) -> Result<()> {
    let mut header = ResponseHeader::build(resp.status, Some(resp.headers.len() + 1))?;
    for (name, value) in resp.headers {
        header.append_header(name, value)?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, resp.body.len().to_string())?;
    let head_only = resp.head_only || session.req_header().method == http::Method::HEAD;
    let empty = head_only || resp.body.is_empty();
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if !empty {
        session.write_response_body(Some(resp.body), true).await?;
    }
    Ok(())
}
