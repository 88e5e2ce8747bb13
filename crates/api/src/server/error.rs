//! Errors as the Docker API returns them: `{"message": ...}` with moby's status codes.

use berth_engine::error_kind::Kind;
use hyper::StatusCode;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> ApiError {
        let status = match e.kind() {
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::InvalidArgument => StatusCode::BAD_REQUEST,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> ApiError {
        ApiError::from(berth_engine::Error::from(e))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
