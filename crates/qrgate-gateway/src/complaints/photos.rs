//! Photos a payer adds to their complaint: a JPEG or PNG whose first bytes
//! say so and agree with its Content-Type, at most QG-COMPLAINT-PHOTO-BYTES
//! each and QG-COMPLAINT-PHOTOS per complaint, while it is not resolved.
//! The same picture twice is one photo (its SHA-256), so a retried upload
//! gets the stored one back. The payer, the merchant, admins and auditors
//! read them.

use serde::Serialize;

use qrgate_core::state::ComplaintStatus;
use qrgate_store::{Complaint, ComplaintPhoto, NewPhoto, Store};

use crate::views::ts;
use crate::{Error, Fresh, Gateway, Kind, Principal, Role};

/// A photo of a complaint (its bytes are at `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ComplaintPhotoView {
    pub object: String,
    pub complaint_id: String,
    /// 1, 2, … in the order they were added.
    pub seq: i64,
    /// image/jpeg or image/png.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where its bytes are read (with the same key).
    pub url: String,
    pub created_at: String,
}

impl ComplaintPhotoView {
    pub(crate) fn of(p: &ComplaintPhoto) -> ComplaintPhotoView {
        ComplaintPhotoView {
            object: "complaint_photo".into(),
            complaint_id: p.complaint_id.clone(),
            seq: p.seq,
            content_type: p.content_type.clone(),
            size_bytes: p.size_bytes,
            sha256: p.sha256.clone(),
            url: format!("/v1/complaints/{}/photos/{}", p.complaint_id, p.seq),
            created_at: ts(p.created_at),
        }
    }
}

pub use qrgate_core::complaint::sniff_image;

impl<S: Store> Gateway<S> {
    /// Whether `p` may add a photo to complaint `id` now (its payer, while
    /// it is not resolved): the edge asks before it reads the body.
    pub async fn check_photo_target(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(&[Role::Consumer])?;
        let k = self.complaint_for(p, id).await?;
        if !takes_photos(k.status) {
            return Err(resolved(&k.id));
        }
        Ok(())
    }

    /// Add a photo to the payer's complaint `id`. `Fresh::Created` for a
    /// new photo, `Fresh::Done` when the same picture was there already.
    pub async fn add_complaint_photo(
        &self,
        p: &Principal,
        id: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<(ComplaintPhotoView, Fresh), Error> {
        p.require(&[Role::Consumer])?;
        let k = self.complaint_for(p, id).await?;
        let lim = self.limits.complaints;
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        if size > lim.photo_max_bytes {
            return Err(photo_too_large(lim.photo_max_bytes));
        }
        let content_type = photo_type(content_type, bytes)?;
        if !takes_photos(k.status) {
            return Err(resolved(&k.id));
        }
        let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes));
        let new = NewPhoto {
            complaint_id: k.id.clone(),
            content_type: content_type.into(),
            sha256,
            bytes: bytes.to_vec(),
            max_photos: lim.photos_max,
        };
        // The store locks the complaint's row (PostgreSQL; SQLite has one
        // writer), so uploads take their numbers one after another: a photo
        // is not added only when it is there already, the complaint is at
        // its cap, or it was resolved meanwhile.
        let added = self
            .store
            .add_complaint_photo(new.clone(), self.now())
            .await?;
        let photos = self.store.complaint_photos(&k.id).await?;
        if let Some(same) = photos.iter().find(|ph| ph.sha256 == new.sha256) {
            let fresh = if added { Fresh::Created } else { Fresh::Done };
            return Ok((ComplaintPhotoView::of(same), fresh));
        }
        if added {
            return Err(Error::internal(format!(
                "a photo added to complaint {} is not there",
                k.id
            )));
        }
        Err(self.photo_refused(&k.id, photos.len()).await)
    }

    /// Why a photo was not added to complaint `id` holding `count` photos.
    async fn photo_refused(&self, id: &str, count: usize) -> Error {
        let max = self.limits.complaints.photos_max;
        if i64::try_from(count).unwrap_or(i64::MAX) >= max {
            return Error::new(
                Kind::Conflict,
                "photo_limit",
                format!("complaint {id} already has {max} photos"),
            )
            .with_rule("QG-COMPLAINT-PHOTOS");
        }
        match self.store.complaint(id).await {
            Ok(Some(now)) if takes_photos(now.status) => Error::internal(format!(
                "a photo was not added to open complaint {id} under its cap"
            )),
            Ok(_) => resolved(id),
            Err(e) => e.into(),
        }
    }

    /// A complaint's photo and its bytes, for whoever may see the
    /// complaint.
    pub async fn complaint_photo(
        &self,
        p: &Principal,
        id: &str,
        seq: i64,
    ) -> Result<(ComplaintPhotoView, Vec<u8>), Error> {
        let k = self.complaint_for(p, id).await?;
        let (photo, bytes) = self
            .store
            .complaint_photo(&k.id, seq)
            .await?
            .ok_or_else(|| Error::not_found("photo", &format!("{id}/{seq}")))?;
        Ok((ComplaintPhotoView::of(&photo), bytes))
    }

    /// A complaint's photos, in order.
    pub(crate) async fn photo_views(
        &self,
        k: &Complaint,
    ) -> Result<Vec<ComplaintPhotoView>, Error> {
        Ok(self
            .store
            .complaint_photos(&k.id)
            .await?
            .iter()
            .map(ComplaintPhotoView::of)
            .collect())
    }
}

/// The photo's type: its first bytes decide, and the Content-Type sent
/// must agree.
fn photo_type(declared: Option<&str>, bytes: &[u8]) -> Result<&'static str, Error> {
    if bytes.is_empty() {
        return Err(Error::bad_request(
            "invalid_request",
            "the photo is empty: send the image's bytes as the body",
        ));
    }
    let declared = declared
        .and_then(|d| d.split(';').next())
        .map(|d| match d.trim().to_ascii_lowercase().as_str() {
            // A name some clients send for JPEG.
            "image/jpg" => "image/jpeg".to_owned(),
            other => other.to_owned(),
        })
        .unwrap_or_default();
    let wrong = |msg: String| {
        Error::new(Kind::UnsupportedMediaType, "photo_type", msg)
            .with_rule("QG-COMPLAINT-PHOTO-BYTES")
    };
    let Some(found) = sniff_image(bytes) else {
        return Err(wrong(
            "a complaint photo is a JPEG or PNG image; these bytes are neither".into(),
        ));
    };
    if declared != found {
        return Err(wrong(format!(
            "the body is {found} but Content-Type says {declared:?}; send Content-Type: {found}"
        )));
    }
    Ok(found)
}

/// The refusal of a photo over `max` bytes (QG-COMPLAINT-PHOTO-BYTES).
pub fn photo_too_large(max: i64) -> Error {
    Error::new(
        Kind::TooLarge,
        "photo_too_large",
        format!("a complaint photo is at most {max} bytes"),
    )
    .with_rule("QG-COMPLAINT-PHOTO-BYTES")
}

fn resolved(id: &str) -> Error {
    super::complaint_moved(
        id,
        ComplaintStatus::Resolved,
        "a resolved complaint takes no photos",
    )
}

/// Whether `status` still takes photos.
pub(crate) fn takes_photos(status: ComplaintStatus) -> bool {
    status != ComplaintStatus::Resolved
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sniffs_png_and_jpeg_only() {
        assert_eq!(
            sniff_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(
            sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]),
            Some("image/jpeg")
        );
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b"<svg xmlns="), None);
        assert_eq!(
            sniff_image(b"\x89PNG"),
            None,
            "a cut signature is not a PNG"
        );
        assert_eq!(sniff_image(&[]), None);
    }

    #[test]
    fn the_declared_type_must_agree() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        assert_eq!(photo_type(Some("image/png"), png), Ok("image/png"));
        assert_eq!(photo_type(Some("Image/PNG; q=1"), png), Ok("image/png"));
        assert_eq!(
            photo_type(Some("image/jpeg"), png).unwrap_err().code,
            "photo_type"
        );
        assert_eq!(photo_type(None, png).unwrap_err().code, "photo_type");
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE1];
        assert_eq!(photo_type(Some("image/jpg"), &jpeg), Ok("image/jpeg"));
        assert_eq!(
            photo_type(Some("image/png"), b"").unwrap_err().code,
            "invalid_request"
        );
    }

    proptest! {
        // Whatever the bytes, the answer is one of the two types or none,
        // and it is a type only when the signature is there.
        #[test]
        fn sniffing_never_guesses(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            match sniff_image(&bytes) {
                Some("image/png") => prop_assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n")),
                Some("image/jpeg") => prop_assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF])),
                Some(other) => prop_assert!(false, "unexpected type {}", other),
                None => prop_assert!(
                    !bytes.starts_with(b"\x89PNG\r\n\x1a\n") && !bytes.starts_with(&[0xFF, 0xD8, 0xFF])
                ),
            }
        }
    }
}
