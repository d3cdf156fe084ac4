"""The theme-build team: strategist, designer, layout planner, section copywriter, critic."""

from agents.theme.copywriter import SectionCopywriterAgent
from agents.theme.critic import ThemeCriticAgent
from agents.theme.designer import ThemeDesignerAgent
from agents.theme.layout import LayoutPlannerAgent
from agents.theme.strategist import BrandStrategistAgent

__all__ = [
    "BrandStrategistAgent",
    "LayoutPlannerAgent",
    "SectionCopywriterAgent",
    "ThemeCriticAgent",
    "ThemeDesignerAgent",
]
