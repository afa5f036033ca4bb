"""Short information cards for the diseases the tomato solution knows, shown with each prediction.

Summaries for orientation only, written from the named extension sources; local rules on
pesticides and the advice of your local extension service come first.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import parse_class_name


@dataclass(frozen=True)
class DiseaseCard:
    """What a disease is, the signs to look for, usual management, and where that comes from."""

    name: str
    cause: str
    signs: str
    management: str
    source: str
    kind: str = "disease"  # disease | pest | virus | healthy | unknown

    def markdown(self) -> str:
        return (f"**{self.name}** ({self.cause})\n\n- **Signs:** {self.signs}\n- **Usual management:** "
                f"{self.management}\n- **Source:** {self.source}\n\n*{DISCLAIMER}*")


DISCLAIMER = ("A summary for orientation, not a diagnosis: confirm with your local extension service or a plant "
              "diagnostic lab before treating, and follow the pesticide label and local rules.")

CARDS: dict[str, DiseaseCard] = {
    "bacterial spot": DiseaseCard(
        "Bacterial spot", "bacteria, Xanthomonas species",
        "Small (up to about 3 mm) dark, water-soaked, greasy-looking spots on leaves, sometimes with a yellow "
        "halo; spots merge and leaves yellow and drop; raised scabby spots on fruit. Favoured by warm, wet weather.",
        "Start with disease-free seed and transplants; avoid overhead watering and working among wet plants; "
        "rotate away from tomato and pepper for 2-3 years and remove crop debris; copper-based sprays only slow "
        "it down and resistance to copper is common.",
        "University of Minnesota Extension, Bacterial spot of tomato and pepper; Cornell Vegetable MD Online"),
    "early blight": DiseaseCard(
        "Early blight", "fungus, Alternaria linariae (A. solani)",
        "Brown spots with concentric rings (a target pattern), often with a yellow margin, starting on the oldest, "
        "lowest leaves and moving up; dark lesions on stems; leathery sunken spots at the fruit's stem end.",
        "Remove infected lower leaves, mulch the soil, stake and space plants for air flow, water at the base; "
        "rotate crops for 3 years; protectant fungicides (e.g. chlorothalonil, copper) when the disease is known "
        "to occur; tolerant varieties exist.",
        "University of Minnesota Extension, Early blight in tomato and potato"),
    "late blight": DiseaseCard(
        "Late blight", "water mould (oomycete), Phytophthora infestans",
        "Large, irregular, greasy grey-green patches that turn brown to black, white fuzzy growth on leaf "
        "undersides in humid weather, dark streaks on stems, firm brown rot on fruit. Spreads within days in cool, "
        "wet weather; the pathogen of the Irish potato famine.",
        "Act fast: remove and bag infected plants (do not compost), destroy volunteer potatoes and culls; "
        "resistant varieties; protectant fungicides before infection when late blight is reported nearby. "
        "Some regions ask growers to report it.",
        "Cornell Vegetable MD Online, Late blight; University of Minnesota Extension, Late blight"),
    "leaf mold": DiseaseCard(
        "Leaf mold", "fungus, Passalora fulva (Cladosporium fulvum)",
        "Pale green to yellow spots on the upper leaf surface with olive-green to grey-brown velvety mould "
        "beneath; older leaves first; mostly in greenhouses and high tunnels with humidity above 85%.",
        "Lower the humidity: ventilate, space and prune plants, avoid wetting leaves, heat at night in "
        "greenhouses; remove infected leaves and crop debris; resistant varieties; fungicides where allowed.",
        "University of Minnesota Extension, Leaf mold of tomato"),
    "septoria leaf spot": DiseaseCard(
        "Septoria leaf spot", "fungus, Septoria lycopersici",
        "Many small round spots (2-6 mm) with dark brown edges and tan or grey centres, often with tiny black "
        "dots (fruiting bodies) in the centre; lower leaves first, then heavy leaf loss.",
        "Remove infected leaves, mulch, water at the base, rotate crops and clear debris and nightshade weeds; "
        "protectant fungicides (e.g. chlorothalonil, copper) in wet seasons.",
        "University of Minnesota Extension, Septoria leaf spot of tomato"),
    "spider mites two-spotted spider mite": DiseaseCard(
        "Two-spotted spider mite", "pest, the mite Tetranychus urticae",
        "Fine yellow or white speckling (stippling) on leaves, then bronzing and drying; fine webbing and tiny "
        "moving dots on leaf undersides; worst in hot, dry, dusty conditions.",
        "Spray leaves with water, keep plants watered and dust down, spare natural enemies (predatory mites) "
        "by avoiding broad-spectrum insecticides; insecticidal soap or horticultural oil on leaf undersides; "
        "miticides for heavy infestations.",
        "University of California IPM, Spider mites (Pest Notes)", kind="pest"),
    "target spot": DiseaseCard(
        "Target spot", "fungus, Corynespora cassiicola",
        "Small water-soaked spots that grow into brown lesions with concentric rings and a light centre, "
        "often with a yellow halo; lesions merge and leaves drop; sunken pitted spots on fruit. Warm, humid weather.",
        "Improve air flow (pruning, spacing), avoid overhead watering, remove crop debris and rotate crops; "
        "protectant fungicides in humid seasons.",
        "University of Florida IFAS Extension, Target spot of tomato"),
    "tomato yellow leaf curl virus": DiseaseCard(
        "Tomato yellow leaf curl virus (TYLCV)", "virus, spread by the whitefly Bemisia tabaci",
        "Leaves curl upwards and cup, small leaves with yellow edges, stunted plants, flowers drop and "
        "few fruit set when plants are infected young.",
        "No cure: remove infected plants early; control whiteflies (screens, reflective mulch, insecticides "
        "where allowed), use virus-free transplants and resistant varieties, keep weeds and volunteers down.",
        "University of Florida IFAS Extension, Tomato yellow leaf curl virus", kind="virus"),
    "tomato mosaic virus": DiseaseCard(
        "Tomato mosaic virus (ToMV)", "virus, spread by hands, tools and seed",
        "Light and dark green mottling (mosaic) on leaves, leaves distorted or fern-like, stunted plants, "
        "uneven ripening and internal browning of fruit.",
        "No cure: remove infected plants; wash hands and disinfect tools and stakes; clean seed and resistant "
        "varieties (Tm-2 genes); do not handle tobacco before working with plants.",
        "University of Minnesota Extension, Tomato mosaic virus and tobacco mosaic virus", kind="virus"),
    "healthy": DiseaseCard(
        "Healthy", "no disease found",
        "Uniform green leaf without spots, mould, curling or mottling.",
        "Keep monitoring: check the lowest leaves and leaf undersides weekly, water at the base, and keep "
        "air moving between plants.",
        "General practice in the extension sources above", kind="healthy"),
}

UNKNOWN = DiseaseCard(
    "Unknown or not a leaf", "the photo is unlike the leaves the model was trained on",
    "The model cannot judge this photo: it does not look like a single leaf photographed as in its training "
    "data, or no leaf-coloured area was found.",
    "Photograph one leaf, filling most of the frame, in even light; if it is a leaf of another crop, the "
    "model does not know that crop.",
    "suite input guard", kind="unknown")


def _key(disease: str) -> str:
    return " ".join(disease.lower().replace("_", " ").replace("-", " ").split())


def card_for(label: str) -> DiseaseCard | None:
    """The card of a class label (``"Tomato___Early_blight"`` or ``"Early blight"``), or None."""
    return _LOOKUP.get(_key(parse_class_name(label)[1]))


_LOOKUP = {_key(name): card for name, card in CARDS.items()}
