//! The HTTP client for requests to a provider: no redirects followed, a timeout per request,
//! and answers larger than [`MAX_BODY`] refused instead of read into memory whole (discovery
//! documents, key sets, token and userinfo answers are all a few kilobytes).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};

/// The largest answer read from a provider.
pub const MAX_BODY: usize = 1 << 20;

/// A provider's HTTP client, usable by the OpenID Connect and OAuth2 libraries and directly.
pub struct ProviderHttp(reqwest::Client);

impl ProviderHttp {
    pub fn new(timeout: Duration) -> Result<ProviderHttp, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("authgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(ProviderHttp)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.0
    }
}

/// A response's body, or `None` if it is larger than [`MAX_BODY`].
pub async fn read_body(
    response: &mut reqwest::Response,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let mut response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = read_body(&mut response)
                .await
                .map_err(Box::new)?
                .ok_or_else(|| {
                    HttpClientError::Other(format!("the answer is larger than {MAX_BODY} bytes"))
                })?;
            builder.body(body).map_err(HttpClientError::Http)
        })
    }
}
