//! The editor's textures: RGB images as egui textures, and the face texture
//! of the window's own wgpu device when the face is computed into it.

use eframe::egui_wgpu::{self, wgpu};
use egui::{ColorImage, TextureHandle, TextureOptions};

/// An RGB image as egui pixels.
pub fn to_color_image(img: &image::RgbImage) -> ColorImage {
    ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw())
}

/// Reloads `texture` from `image` when its revision `rev.0` differs from the one last shown (`rev.1`).
pub fn sync_image(
    ctx: &egui::Context,
    name: &str,
    image: Option<&image::RgbImage>,
    rev: (u64, &mut Option<u64>),
    texture: &mut Option<TextureHandle>,
    options: TextureOptions,
) {
    let (now, shown) = rev;
    if *shown != Some(now) {
        *shown = Some(now);
        *texture = image.map(|i| ctx.load_texture(name, to_color_image(i), options));
    }
}

/// The face texture of the window's wgpu device, registered with egui once.
pub struct GpuFaceTexture {
    /// egui's id for it.
    pub id: egui::TextureId,
    /// The texture's view.
    pub view: wgpu::TextureView,
    /// How egui samples it.
    pub filter: wgpu::FilterMode,
    /// The window's renderer it is registered with.
    pub renderer: egui_wgpu::RenderState,
}

impl GpuFaceTexture {
    /// Switches between crisp and smooth scaling (re-registers the texture).
    pub fn set_filter(&mut self, filter: wgpu::FilterMode) {
        if filter != self.filter {
            self.filter = filter;
            let r = &self.renderer;
            r.renderer
                .write()
                .update_egui_texture_from_wgpu_texture(&r.device, &self.view, filter, self.id);
        }
    }
}

/// Linear filtering when smooth, else nearest.
pub fn filter_of(smooth: bool) -> wgpu::FilterMode {
    if smooth {
        wgpu::FilterMode::Linear
    } else {
        wgpu::FilterMode::Nearest
    }
}
